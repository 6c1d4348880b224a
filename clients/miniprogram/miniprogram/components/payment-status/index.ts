import { messageFor } from '../../api/minipay'
import type { Lang, MessageCode } from '../../api/minipay'
import { labels } from '../../i18n'

/**
 * Where a payment stands, as the user sees it:
 * - `paying`: the prepay is being made or the sheet is open;
 * - `confirming`: the sheet said paid and the server is being asked;
 * - `unconfirmed`: the sheet said paid, the server has not confirmed it yet (not a failure);
 * - `paid`, `cancelled` (the order is still payable), `failed` (the sheet failed), `closed`,
 *   `expired`, `review`, `pending` (no payment seen), `error` (a call failed: `detail`).
 */
export type PaymentState =
  | 'paying'
  | 'confirming'
  | 'unconfirmed'
  | 'paid'
  | 'cancelled'
  | 'failed'
  | 'closed'
  | 'expired'
  | 'review'
  | 'pending'
  | 'error'

/** What the user can do from a state (the `action` event's `detail.action`). */
export type StatusAction = 'retry' | 'refresh' | 'shop'

const TITLES: Record<Exclude<PaymentState, 'paying' | 'error'>, MessageCode> = {
  confirming: 'payment_confirming',
  unconfirmed: 'payment_confirming',
  paid: 'paid',
  cancelled: 'payment_cancelled',
  failed: 'payment_failed',
  closed: 'order_closed',
  expired: 'order_expired',
  review: 'order_review',
  pending: 'payment_pending',
}

const ACTIONS: Record<PaymentState, StatusAction[]> = {
  paying: [],
  confirming: [],
  unconfirmed: ['refresh'],
  paid: ['shop'],
  cancelled: ['retry'],
  failed: ['retry'],
  closed: ['shop'],
  expired: ['shop'],
  review: ['shop'],
  pending: ['refresh', 'retry'],
  error: ['retry'],
}

/** The title, hint and buttons of a state in a language. */
export function describe(state: PaymentState, lang: Lang, detail: string, reconnecting: boolean) {
  const t = labels(lang)
  const busy = state === 'paying' || state === 'confirming'
  let title: string
  if (state === 'paying') title = t.paying
  else if (state === 'error') title = detail || messageFor('internal', lang)
  else title = messageFor(TITLES[state] ?? 'internal', lang)
  let hint = ''
  if (busy && reconnecting) hint = t.reconnecting
  else if (state === 'unconfirmed') hint = t.unconfirmedHint
  const names: Record<StatusAction, string> = { retry: t.retry, refresh: t.refresh, shop: t.backToShop }
  const actions = (ACTIONS[state] ?? []).map((action, i) => ({ action, label: names[action], primary: i === 0 }))
  return { title, hint, busy, actions }
}

Component({
  properties: {
    state: { type: String, value: 'paying' },
    lang: { type: String, value: 'zh' },
    detail: { type: String, value: '' },
    reconnecting: { type: Boolean, value: false },
  },
  data: {
    title: '',
    hint: '',
    busy: false,
    actions: [] as { action: StatusAction; label: string; primary: boolean }[],
  },
  observers: {
    'state, lang, detail, reconnecting': function (state: string, lang: string, detail: string, reconnecting: boolean): void {
      this.setData(describe(state as PaymentState, lang === 'en' ? 'en' : 'zh', detail, reconnecting))
    },
  },
  lifetimes: {
    attached(): void {
      const p = this.properties
      this.setData(describe(p.state as PaymentState, p.lang === 'en' ? 'en' : 'zh', p.detail, p.reconnecting))
    },
  },
  methods: {
    onAction(e: WechatMiniprogram.TouchEvent<Record<string, never>, Record<string, never>, { action: StatusAction }>): void {
      this.triggerEvent('action', { action: e.currentTarget.dataset.action })
    },
  },
})
