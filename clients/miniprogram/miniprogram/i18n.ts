import type { Lang, OrderStatus } from './api/minipay'

/** The pages' own words (the API module has the messages for error codes and outcomes). */
const LABELS = {
  shopTitle: ['茶铺', 'Tea shop'],
  buy: ['立即购买', 'Buy now'],
  buying: ['正在下单…', 'Placing the order…'],
  emptyCart: ['请先选择商品', 'Choose something first'],
  loading: ['加载中…', 'Loading…'],
  reload: ['重新加载', 'Reload'],
  pay: ['微信支付', 'Pay with WeChat'],
  cancelOrder: ['取消订单', 'Cancel order'],
  total: ['合计', 'Total'],
  orderNo: ['订单号', 'Order number'],
  transactionId: ['微信支付单号', 'WeChat Pay transaction'],
  paying: ['正在发起支付…', 'Opening WeChat Pay…'],
  reconnecting: ['网络不稳定，正在重试…', 'Connection unstable, still checking…'],
  unconfirmedHint: ['如已扣款，请稍后刷新查看，无需重复支付', 'If you were charged, refresh later; do not pay again'],
  retry: ['继续支付', 'Pay again'],
  refresh: ['刷新', 'Refresh'],
  backToShop: ['返回商店', 'Back to the shop'],
} as const

export type LabelKey = keyof typeof LABELS
export type Labels = Record<LabelKey, string>

/** Every label in one language (for a page's `data.t`). */
export function labels(lang: Lang): Labels {
  const out = {} as Labels
  for (const key of Object.keys(LABELS) as LabelKey[]) out[key] = LABELS[key][lang === 'en' ? 1 : 0]
  return out
}

const STATUS: Record<OrderStatus, readonly [string, string]> = {
  PENDING: ['待支付', 'Awaiting payment'],
  PAID: ['已支付', 'Paid'],
  CLOSED: ['已关闭', 'Closed'],
  REFUNDING: ['退款中', 'Refunding'],
  PARTIALLY_REFUNDED: ['部分退款', 'Partly refunded'],
  REFUNDED: ['已退款', 'Refunded'],
  REVIEW: ['核对中', 'Being checked'],
}

/** An order status for the user. */
export function statusLabel(status: OrderStatus, lang: Lang): string {
  const pair = STATUS[status]
  return pair ? pair[lang === 'en' ? 1 : 0] : status
}
