import { messageFor } from '../../api/minipay'
import type { Order, PaymentOutcome } from '../../api/minipay'
import type { PaymentState, StatusAction } from '../../components/payment-status/index'
import { labels } from '../../i18n'
import { shop } from '../../shop'
import { orderView } from '../view'
import type { OrderView } from '../view'

/** The state an order shows before anyone taps "pay" ('' = payable, the pay button shows). */
function stateOf(order: Order): PaymentState | '' {
  switch (order.status) {
    case 'PENDING':
      return ''
    case 'CLOSED':
      return 'closed'
    case 'REVIEW':
      return 'review'
    default:
      return 'paid'
  }
}

/** Where each outcome of `pay` leaves this page. */
const AFTER: Record<PaymentOutcome['kind'], PaymentState> = {
  paid: 'paid',
  confirming: 'unconfirmed',
  review: 'review',
  cancelled: 'cancelled',
  failed: 'failed',
  closed: 'closed',
  expired: 'expired',
}

/**
 * One order and its checkout: the pay button runs prepay → wx.requestPayment → the server's
 * answer. A cancelled or failed sheet stays here with a retry button (the order is still
 * payable, with the same prepay); once the sheet said paid, the result page takes over.
 */
Component({
  data: {
    t: labels('zh'),
    lang: 'zh',
    id: '',
    order: null as OrderView | null,
    state: '' as PaymentState | '',
    message: '',
    reconnecting: false,
    busy: false,
  },
  methods: {
    onLoad(query: Record<string, string | undefined>): Promise<void> {
      const { lang } = shop()
      this.setData({ t: labels(lang), lang, id: query.id ?? '' })
      return this.load()
    },

    async load(): Promise<void> {
      const { minipay, lang } = shop()
      try {
        const order = await minipay.order(this.data.id)
        this.setData({ order: orderView(order, lang), state: stateOf(order), message: '' })
      } catch (e) {
        this.setData({ state: 'error', message: messageFor(e, lang) })
      }
    },

    async onPay(): Promise<void> {
      if (this.data.busy) return
      const { minipay, lang } = shop()
      const id = this.data.id
      this.setData({ busy: true, state: 'paying', message: '', reconnecting: false })
      try {
        const outcome = await minipay.pay(id, {
          onProgress: (p) =>
            this.setData({ state: p.state, reconnecting: p.state === 'confirming' && p.networkFailures > 0 }),
        })
        this.setData({ state: AFTER[outcome.kind], reconnecting: false })
        if ('order' in outcome && outcome.order) this.setData({ order: orderView(outcome.order, lang) })
        if (outcome.kind === 'paid' || outcome.kind === 'confirming' || outcome.kind === 'review') {
          wx.redirectTo({ url: `/pages/result/index?id=${id}&outcome=${outcome.kind}` })
        }
      } catch (e) {
        this.setData({ state: 'error', message: messageFor(e, lang), reconnecting: false })
      } finally {
        this.setData({ busy: false })
      }
    },

    async onCancelOrder(): Promise<void> {
      if (this.data.busy) return
      const { minipay, lang } = shop()
      this.setData({ busy: true })
      try {
        const order = await minipay.cancel(this.data.id)
        this.setData({ order: orderView(order, lang), state: stateOf(order), message: '' })
      } catch (e) {
        // It was paid meanwhile, say: show the order as it is now.
        this.setData({ message: messageFor(e, lang) })
        await this.load()
        this.setData({ message: messageFor(e, lang) })
      } finally {
        this.setData({ busy: false })
      }
    },

    onStatusAction(e: WechatMiniprogram.CustomEvent<{ action: StatusAction }>): Promise<void> | undefined {
      switch (e.detail.action) {
        case 'retry':
          return this.onPay()
        case 'refresh':
          return this.load()
        case 'shop':
          wx.redirectTo({ url: '/pages/products/index' })
          return undefined
      }
    },
  },
})
