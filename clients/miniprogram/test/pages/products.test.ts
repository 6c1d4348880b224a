/**
 * The product page: the server's price list, a cart, and "buy" creating the order with an
 * Idempotency-Key that a retried tap reuses; only skus and quantities are sent.
 */
import { until } from '../support/fake'
import { fakeShop, load, tap, text, texts } from '../support/simulate'
import type { Rendered, Shop } from '../support/simulate'

async function open(shop: Shop): Promise<Rendered> {
  const page = load('pages/products/index', shop)
  await page.instance.onLoad({})
  return page
}

async function buy(page: Rendered): Promise<void> {
  await tap(page, '.buy')
  await until('the buy tap to finish', () => page.data.buying === false)
}

test('shows the price list as the server sends it', async () => {
  const page = await open(fakeShop('zh'))
  expect(texts(page, '.name')).toEqual(['Jasmine tea, 100 g', 'Oolong tea, 100 g', 'Celadon cup'])
  expect(texts(page, '.price')).toEqual(['¥19.99', '¥29.99', '¥45.00'])
  expect(text(page, '.buy')).toBe('立即购买')
})

test('buying sends skus and quantities only, then opens the order page', async () => {
  const shop = fakeShop('en')
  const page = await open(shop)
  await tap(page, '#row-TEA-JASMINE .plus')
  await tap(page, '#row-TEA-JASMINE .plus')
  await tap(page, '#row-CUP-CELADON .plus')
  await tap(page, '#row-CUP-CELADON .plus')
  await tap(page, '#row-CUP-CELADON .minus')
  expect(text(page, '.total')).toBe('¥84.98')
  await buy(page)
  const sent = shop.server.requests('POST', /^\/api\/v1\/orders$/)
  expect(sent).toHaveLength(1)
  expect(sent[0].body).toEqual({
    items: [
      { sku: 'TEA-JASMINE', quantity: 2 },
      { sku: 'CUP-CELADON', quantity: 1 },
    ],
  })
  expect(sent[0].header['Idempotency-Key']).toMatch(/^[!-~]{1,64}$/)
  const [order] = [...shop.server.orders.values()]
  expect(order.amount_fen).toBe(2 * 1999 + 4500)
  expect(shop.wx.navigations).toEqual([{ how: 'navigateTo', url: `/pages/order/index?id=${order.id}` }])
})

test('an empty cart asks for a choice and sends nothing', async () => {
  const shop = fakeShop('zh')
  const page = await open(shop)
  await tap(page, '.buy')
  expect(text(page, '.error-text')).toBe('请先选择商品')
  expect(shop.server.requests('POST', /orders/)).toHaveLength(0)
})

test('a tap retried after lost answers creates one order, not two', async () => {
  const shop = fakeShop('zh')
  const page = await open(shop)
  await tap(page, '#row-TEA-OOLONG .plus')
  // The order is created, but every answer of the tap's three tries is lost.
  shop.server.fail('POST', /^\/api\/v1\/orders$/, { kind: 'lose-answer' }, 3)
  await buy(page)
  expect(text(page, '.error-text')).toBe('网络连接失败，请检查网络后重试')
  expect(shop.wx.navigations).toEqual([])
  // The user taps again: the same key, so the server answers the order it already made.
  await buy(page)
  const keys = shop.server.requests('POST', /^\/api\/v1\/orders$/).map((s) => s.header['Idempotency-Key'])
  expect(keys).toHaveLength(4)
  expect(new Set(keys).size).toBe(1)
  expect(shop.server.orders.size).toBe(1)
  const [order] = [...shop.server.orders.values()]
  expect(shop.wx.navigations).toEqual([{ how: 'navigateTo', url: `/pages/order/index?id=${order.id}` }])
})

test('a changed cart is a new order: a new key', async () => {
  const shop = fakeShop('zh')
  const page = await open(shop)
  await tap(page, '#row-TEA-OOLONG .plus')
  shop.server.fail('POST', /^\/api\/v1\/orders$/, { kind: 'drop' }, 3)
  await buy(page)
  await tap(page, '#row-TEA-OOLONG .plus')
  await buy(page)
  const keys = shop.server.requests('POST', /^\/api\/v1\/orders$/).map((s) => s.header['Idempotency-Key'])
  expect(keys).toHaveLength(4)
  expect(keys[3]).not.toBe(keys[0])
  expect([...shop.server.orders.values()].map((o) => o.items[0].quantity)).toEqual([2])
})

test('a price list that cannot be loaded says why, in the user’s language, and can be reloaded', async () => {
  const shop = fakeShop('en')
  shop.server.fail('GET', /^\/api\/v1\/products$/, { kind: 'status', status: 503, body: 'no healthy upstream' }, 3)
  const page = await open(shop)
  expect(text(page, '.error-text')).toBe('The service is unavailable right now; try again shortly')
  await tap(page, '.reload')
  await until('the list to load', () => page.data.rows.length === 3)
  expect(text(page, '.error-text')).toBe('')
})
