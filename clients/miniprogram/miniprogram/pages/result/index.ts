import type { PollOutcome } from '../../api/minipay'
import type { PaymentState, StatusAction } from '../../components/payment-status/index'
import { labels } from '../../i18n'
import { shop } from '../../shop'
import { orderView } from '../view'
import type { OrderView } from '../view'

/** Where each poll outcome leaves the page: the sheet said paid, so PENDING is "unconfirmed". */
const AFTER: Record<PollOutcome['kind'], PaymentState> = {
  paid: 'paid',
  closed: 'closed',
  review: 'review',
  pending: 'unconfirmed',
}

/**
 * The payment's result, after the sheet said paid: asks the server (with backoff, through
 * network drops) until it says PAID or CLOSED, and says "paid, confirming…" with a refresh
 * button if it has not confirmed yet, or if asking failed — never "failed".
 */
Component({
  data: {
    t: labels('zh'),
    lang: 'zh',
    id: '',
    state: 'confirming' as PaymentState,
    order: null as OrderView | null,
    message: '',
    reconnecting: false,
    left: false,
  },
  methods: {
    onLoad(query: Record<string, string | undefined>): Promise<void> {
      const { lang } = shop()
      this.setData({ t: labels(lang), lang, id: query.id ?? '' })
      return this.check()
    },

    onUnload(): void {
      this.setData({ left: true })
    },

    async check(): Promise<void> {
      const { minipay, lang } = shop()
      this.setData({ state: 'confirming', reconnecting: false, message: '' })
      try {
        const result = await minipay.waitForResult(this.data.id, {
          onAttempt: (_attempt, networkFailures) => this.setData({ reconnecting: networkFailures > 0 }),
          stop: () => this.data.left,
        })
        this.setData({ state: AFTER[result.kind], reconnecting: false })
        if (result.order) this.setData({ order: orderView(result.order, lang) })
      } catch {
        // The sheet said paid: a query that failed for good (a second 401, a 404, a 429, an
        // unreadable answer) leaves the payment unconfirmed, with a refresh button; it is
        // never shown as a failure with a "pay again".
        this.setData({ state: 'unconfirmed', reconnecting: false })
      }
    },

    onStatusAction(e: WechatMiniprogram.CustomEvent<{ action: StatusAction }>): Promise<void> | undefined {
      switch (e.detail.action) {
        case 'refresh':
        case 'retry':
          return this.check()
        case 'shop':
          wx.redirectTo({ url: '/pages/products/index' })
          return undefined
      }
    },
  },
})
