import type { Lang, Order } from '../api/minipay'
import { statusLabel } from '../i18n'
import { yuan } from '../shop'

/** An order as the pages show it. */
export interface OrderView {
  id: string
  outTradeNo: string
  status: Order['status']
  statusText: string
  total: string
  lines: { sku: string; name: string; quantity: number; price: string }[]
  transactionId: string
}

export function orderView(order: Order, lang: Lang): OrderView {
  return {
    id: order.id,
    outTradeNo: order.out_trade_no,
    status: order.status,
    statusText: statusLabel(order.status, lang),
    total: yuan(order.amount_fen),
    lines: order.items.map((i) => ({ sku: i.sku, name: i.name, quantity: i.quantity, price: yuan(i.unit_price_fen) })),
    transactionId: order.transaction_id ?? '',
  }
}
