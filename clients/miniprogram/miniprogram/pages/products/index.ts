import { messageFor, newIdempotencyKey } from '../../api/minipay'
import type { CartLine, Product } from '../../api/minipay'
import { labels } from '../../i18n'
import { shop, yuan } from '../../shop'

interface Row {
  sku: string
  name: string
  price: string
  priceFen: number
  quantity: number
}

/**
 * The price list and a cart. Prices shown come from the server's list; the order only says
 * which skus and how many, and the server prices it.
 */
Component({
  data: {
    t: labels('zh'),
    lang: 'zh',
    loading: true,
    rows: [] as Row[],
    total: '',
    error: '',
    buying: false,
    /** The Idempotency-Key of the checkout in progress: kept while the same tap is retried. */
    checkoutKey: '',
  },
  methods: {
    onLoad(): Promise<void> {
      const { lang } = shop()
      this.setData({ t: labels(lang), lang })
      return this.load()
    },

    async load(): Promise<void> {
      this.setData({ loading: true, error: '' })
      try {
        const products = await shop().minipay.products()
        this.setData({ loading: false, rows: products.map(toRow), total: '' })
      } catch (e) {
        this.setData({ loading: false, error: messageFor(e, shop().lang) })
      }
    },

    /** The − and + buttons (`data-sku`, `data-delta`). */
    onQuantity(e: WechatMiniprogram.TouchEvent<Record<string, never>, Record<string, never>, { sku: string; delta: number }>): void {
      const { sku, delta } = e.currentTarget.dataset
      const rows = this.data.rows.map((r) =>
        r.sku === sku ? { ...r, quantity: Math.max(0, Math.min(99, r.quantity + Number(delta))) } : r,
      )
      // Another cart is another order: a new key for the next tap.
      this.setData({ rows, total: totalOf(rows), checkoutKey: '', error: '' })
    },

    async onBuy(): Promise<void> {
      if (this.data.buying) return
      const lines: CartLine[] = this.data.rows.filter((r) => r.quantity > 0).map((r) => ({ sku: r.sku, quantity: r.quantity }))
      const { minipay, lang } = shop()
      if (lines.length === 0) {
        this.setData({ error: labels(lang).emptyCart })
        return
      }
      // The same key for every retry of this tap: a lost answer never makes a second order.
      const key = this.data.checkoutKey || newIdempotencyKey()
      this.setData({ buying: true, error: '', checkoutKey: key })
      try {
        const { order } = await minipay.createOrder(lines, key)
        this.setData({ buying: false, checkoutKey: '' })
        wx.navigateTo({ url: `/pages/order/index?id=${order.id}` })
      } catch (e) {
        this.setData({ buying: false, error: messageFor(e, lang) })
      }
    },
  },
})

/** The product list shown (the price is display only). */
function toRow(p: Product): Row {
  return { sku: p.sku, name: p.name, price: yuan(p.price_fen), priceFen: p.price_fen, quantity: 0 }
}

/** The cart's total as the list prices it, for display (the order's amount is the server's). */
function totalOf(rows: Row[]): string {
  const fen = rows.reduce((sum, r) => sum + r.priceFen * r.quantity, 0)
  return fen > 0 ? yuan(fen) : ''
}
