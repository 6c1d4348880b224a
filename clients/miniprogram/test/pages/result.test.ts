/**
 * The payment-result page, reached once the sheet said paid: it asks the server until PAID
 * or CLOSED, through network drops and an expired session, and says "paid, confirming…"
 * (with a refresh button) while the server has not confirmed the payment.
 */
import type { Order } from '../../miniprogram/api/minipay'
import { until } from '../support/fake'
import type { Fault } from '../support/fake'
import { fakeShop, load, tap, text, texts } from '../support/simulate'
import type { Rendered, Shop } from '../support/simulate'

const ORDER_PATH = /^\/api\/v1\/orders\/[^/]+$/

interface Opened {
  shop: Shop
  page: Rendered
  order: Order
  /** The first check (onLoad's promise): resolves when the poll has ended. */
  checked: Promise<void>
}

async function open(
  lang: 'zh' | 'en',
  prepare: (shop: Shop, order: Order) => void | Promise<void>,
  outcome = 'paid',
  pollTimeoutMs?: number,
): Promise<Opened> {
  const shop = fakeShop(lang, pollTimeoutMs)
  const order = shop.server.seed('alice', [{ sku: 'CUP-CELADON', quantity: 1 }])
  await prepare(shop, order)
  const page = load('pages/result/index', shop)
  const checked = page.instance.onLoad({ id: order.id, outcome }) as Promise<void>
  return { shop, page, order, checked }
}

function title(page: Rendered): string {
  return text(page.querySelector('#status') as Rendered, '.title')
}

test('PAID: "payment successful" with the amount and WeChat’s transaction number', async () => {
  const { shop, page, checked } = await open('zh', (s, o) => s.server.confirmPayment(o.id))
  await checked
  expect(page.data.state).toBe('paid')
  expect(title(page)).toBe('支付成功')
  expect(text(page, '.amount')).toBe('¥45.00')
  expect(text(page, '.status')).toBe('已支付')
  expect(text(page, '.transaction')).toMatch(/^4200/)
  expect(shop.server.requests('GET', ORDER_PATH)).toHaveLength(1)
})

test('confirming until the notification arrives, then PAID', async () => {
  const { shop, page, checked } = await open('zh', (s, o) => s.server.confirmAfterReads(o.id, 2))
  expect(page.data.state).toBe('confirming')
  expect(title(page)).toBe('支付成功，正在确认…')
  expect(page.querySelector('#status')!.querySelector('.spinner')).toBeDefined()
  await checked
  expect(page.data.state).toBe('paid')
  expect(shop.server.requests('GET', ORDER_PATH)).toHaveLength(3)
})

test('the network drops mid-poll: it keeps polling, shows that it does, and ends PAID', async () => {
  const { shop, page, checked } = await open('en', (s, o) => {
    s.server.confirmAfterReads(o.id, 1)
    s.server.fail('GET', ORDER_PATH, { kind: 'drop' }, 3)
  })
  await until('the reconnecting hint', () => page.data.reconnecting === true)
  expect(text(page.querySelector('#status') as Rendered, '.hint')).toBe('Connection unstable, still checking…')
  await checked
  expect(page.data.state).toBe('paid')
  expect(title(page)).toBe('Payment successful')
  expect(page.data.reconnecting).toBe(false)
  expect(shop.server.requests('GET', ORDER_PATH).map((s) => s.status)).toEqual(['dropped', 'dropped', 'dropped', 200, 200])
})

test('not confirmed within the poll: "paid, confirming…" and a refresh that later finds PAID', async () => {
  const { shop, page, order, checked } = await open('zh', () => {}, 'confirming', 60)
  await checked
  expect(page.data.state).toBe('unconfirmed')
  expect(title(page)).toBe('支付成功，正在确认…')
  expect(text(page.querySelector('#status') as Rendered, '.hint')).toBe('如已扣款，请稍后刷新查看，无需重复支付')
  expect(texts(page.querySelector('#status') as Rendered, '.action')).toEqual(['刷新'])
  shop.server.confirmPayment(order.id)
  await tap(page.querySelector('#status') as Rendered, '.action-refresh')
  await until('PAID after the refresh', () => page.data.state === 'paid')
  expect(title(page)).toBe('支付成功')
})

test.each([
  ['401 after logging in again once', { kind: 'status', status: 401, body: { code: 'unauthenticated', message: 'session token expired' } }, 2],
  ["the gateway's 404 not_found", { kind: 'status', status: 404, body: { code: 'not_found', message: 'no such route' } }, 1],
  ['429', { kind: 'status', status: 429, body: 'local_rate_limited' }, 1],
] as [string, Fault, number][])('asking fails for good (%s): "paid, confirming…" with a refresh, never "pay again"', async (_name, fault, times) => {
  const { shop, page, order, checked } = await open('en', (s) => s.server.fail('GET', ORDER_PATH, fault, times), 'confirming')
  await checked
  expect(page.data.state).toBe('unconfirmed')
  expect(title(page)).toBe('Paid, confirming…')
  expect(texts(page.querySelector('#status') as Rendered, '.action')).toEqual(['Refresh'])
  shop.server.confirmPayment(order.id)
  await tap(page.querySelector('#status') as Rendered, '.action-refresh')
  await until('PAID after the refresh', () => page.data.state === 'paid')
  expect(title(page)).toBe('Payment successful')
})

test('CLOSED: the poll stops and the page says the order is closed', async () => {
  const { shop, page, checked } = await open('en', (s, o) => s.server.close(o.id))
  await checked
  expect(page.data.state).toBe('closed')
  expect(title(page)).toBe('This order is closed')
  expect(texts(page.querySelector('#status') as Rendered, '.action')).toEqual(['Back to the shop'])
  // The poll is over (onLoad's check has returned) after the one query that saw CLOSED.
  expect(shop.server.requests('GET', ORDER_PATH)).toHaveLength(1)
  await tap(page.querySelector('#status') as Rendered, '.action-shop')
  expect(shop.wx.navigations).toEqual([{ how: 'redirectTo', url: '/pages/products/index' }])
})

test('the session expired: logs in again once and shows PAID', async () => {
  const { shop, page, checked } = await open('zh', async (s, o) => {
    await s.app.minipay.login()
    s.server.expireSessions()
    s.server.confirmPayment(o.id)
  })
  await checked
  expect(page.data.state).toBe('paid')
  expect(shop.server.logins).toBe(2)
  expect(shop.server.requests('GET', ORDER_PATH).map((s) => s.status)).toEqual([401, 200])
})

test('leaving the page ends the poll', async () => {
  const { shop, page, checked } = await open('zh', () => {})
  await until('the first poll', () => shop.server.requests('GET', ORDER_PATH).length >= 1)
  const atUnload = shop.server.requests('GET', ORDER_PATH).length
  page.instance.onUnload()
  await checked
  // At most the query in flight when the page was left; then the poll ended, 10 s early.
  expect(shop.server.requests('GET', ORDER_PATH).length).toBeLessThanOrEqual(atUnload + 1)
  expect(page.data.state).toBe('unconfirmed')
})
