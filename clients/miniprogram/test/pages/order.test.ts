/**
 * The order page: each state of the payment flow as the user sees it — paying, cancelled
 * (still payable, a retry button, the same prepay), the sheet failing, an expired session
 * (logs in again once), a network drop while confirming, not confirmed yet, expired, closed,
 * cancelling the order, and errors in the user's language.
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
}

async function open(
  lang: 'zh' | 'en' = 'zh',
  prepare: (shop: Shop, order: Order) => void = () => {},
  pollTimeoutMs?: number,
): Promise<Opened> {
  const shop = fakeShop(lang, pollTimeoutMs)
  const order = shop.server.seed('alice', [
    { sku: 'TEA-JASMINE', quantity: 2 },
    { sku: 'TEA-OOLONG', quantity: 1 },
  ])
  prepare(shop, order)
  const page = load('pages/order/index', shop)
  await page.instance.onLoad({ id: order.id })
  return { shop, page, order }
}

/** The payment-status component's title. */
function status(page: Rendered): string {
  const node = page.querySelector('#status')
  return node ? text(node as Rendered, '.title') : ''
}

function buttons(page: Rendered): string[] {
  const node = page.querySelector('#status')
  return node ? texts(node as Rendered, '.action') : []
}

async function pressStatusButton(page: Rendered, action: string): Promise<void> {
  const node = page.querySelector('#status')
  if (!node) throw new Error('no payment status shown')
  await tap(node as Rendered, `.action-${action}`)
}

async function pay(page: Rendered): Promise<void> {
  await tap(page, '.pay')
  await until('the payment to end', () => page.data.busy === false)
}

test('shows the order as the server priced it, with the pay and cancel buttons', async () => {
  const { page } = await open('zh')
  expect(texts(page, '.line')).toEqual(['Jasmine tea, 100 g × 2¥19.99', 'Oolong tea, 100 g × 1¥29.99', '合计¥69.97'])
  expect(text(page, '.status')).toBe('待支付')
  expect(text(page, '.pay')).toBe('微信支付 ¥69.97')
  expect(text(page, '.cancel-order')).toBe('取消订单')
  expect(status(page)).toBe('')
})

test('paying: while the sheet is open the page says so and the pay button is gone', async () => {
  const { shop, page } = await open('zh')
  shop.wx.user('hold')
  await tap(page, '.pay')
  await until('the sheet to open', () => shop.wx.sheets.length === 1)
  expect(page.data.state).toBe('paying')
  expect(status(page)).toBe('正在发起支付…')
  expect(page.querySelector('.pay')).toBeUndefined()
  shop.wx.release('cancel')
  await until('the payment to end', () => page.data.busy === false)
})

test('paid: on to the result page', async () => {
  const { shop, page, order } = await open('zh')
  shop.wx.user('pay')
  await pay(page)
  expect(shop.wx.navigations).toEqual([{ how: 'redirectTo', url: `/pages/result/index?id=${order.id}&outcome=paid` }])
  expect(shop.server.orders.get(order.id)?.status).toBe('PAID')
})

test('cancelled: the order stays payable, and "pay again" pays it with the same prepay', async () => {
  const { shop, page, order } = await open('zh')
  shop.wx.user('cancel')
  await pay(page)
  expect(page.data.state).toBe('cancelled')
  expect(status(page)).toBe('已取消支付，订单仍可支付')
  expect(buttons(page)).toEqual(['继续支付'])
  expect(text(page, '.status')).toBe('待支付')
  expect(shop.wx.navigations).toEqual([])

  shop.wx.user('pay')
  await pressStatusButton(page, 'retry')
  await until('the second payment to end', () => shop.wx.navigations.length === 1)
  expect(shop.wx.sheets.map((s) => s.package)).toEqual([`prepay_id=wx${order.out_trade_no}`, `prepay_id=wx${order.out_trade_no}`])
  expect(shop.wx.navigations).toEqual([{ how: 'redirectTo', url: `/pages/result/index?id=${order.id}&outcome=paid` }])
})

test('the sheet fails: "not completed", with a retry button; nothing is taken as paid', async () => {
  const { shop, page, order } = await open('en')
  shop.wx.user({ fail: 'requestPayment:fail system error' })
  await pay(page)
  expect(page.data.state).toBe('failed')
  expect(status(page)).toBe('The payment did not go through; please try again')
  expect(buttons(page)).toEqual(['Pay again'])
  expect(shop.server.orders.get(order.id)?.status).toBe('PENDING')
})

test('the session expired: logs in again once, then pays', async () => {
  const { shop, page, order } = await open('zh')
  expect(shop.server.logins).toBe(1)
  shop.server.expireSessions()
  shop.wx.user('pay')
  await pay(page)
  expect(shop.server.logins).toBe(2)
  expect(shop.server.requests('POST', /\/payment$/).map((s) => s.status)).toEqual([401, 200])
  expect(shop.wx.navigations).toEqual([{ how: 'redirectTo', url: `/pages/result/index?id=${order.id}&outcome=paid` }])
})

test('the network drops while confirming: the page says it keeps checking, and it ends paid', async () => {
  const { shop, page, order } = await open('zh')
  shop.wx.user({ pay: 'late', afterReads: 1 })
  shop.server.fail('GET', ORDER_PATH, { kind: 'drop' }, 2)
  await tap(page, '.pay')
  await until('the reconnecting hint', () => page.data.reconnecting === true)
  expect(page.data.state).toBe('confirming')
  expect(text(page.querySelector('#status') as Rendered, '.hint')).toBe('网络不稳定，正在重试…')
  await until('the payment to end', () => page.data.busy === false)
  expect(shop.wx.navigations).toEqual([{ how: 'redirectTo', url: `/pages/result/index?id=${order.id}&outcome=paid` }])
  expect(shop.server.requests('GET', ORDER_PATH).map((s) => s.status).slice(-4)).toEqual(['dropped', 'dropped', 200, 200])
})

test('paid but not confirmed in time: "paid, confirming…", never "failed"', async () => {
  const { shop, page, order } = await open('zh', () => {}, 60)
  shop.wx.user({ pay: 'never-confirmed' })
  await pay(page)
  expect(page.data.state).toBe('unconfirmed')
  expect(status(page)).toBe('支付成功，正在确认…')
  expect(shop.wx.navigations).toEqual([{ how: 'redirectTo', url: `/pages/result/index?id=${order.id}&outcome=confirming` }])
})

describe('paid, then asking the server fails for good: "paid, confirming…", never an error or "pay again"', () => {
  const cases: [string, Fault, number][] = [
    ['401 after logging in again once', { kind: 'status', status: 401, body: { code: 'unauthenticated', message: 'session token expired' } }, 2],
    ['404 order_not_found', { kind: 'status', status: 404, body: { code: 'order_not_found', message: 'order not found' } }, 1],
    ["the gateway's 404 not_found", { kind: 'status', status: 404, body: { code: 'not_found', message: 'no such route' } }, 1],
    ['429', { kind: 'status', status: 429, body: 'local_rate_limited' }, 1],
    ['an unreadable 200', { kind: 'status', status: 200, body: '<html>portal</html>' }, 1],
  ]

  test.each(cases)('%s', async (_name, fault, times) => {
    const { shop, page, order } = await open('en')
    shop.wx.user({ pay: 'never-confirmed' })
    shop.server.fail('GET', ORDER_PATH, fault, times)
    await pay(page)
    expect(page.data.state).toBe('unconfirmed')
    expect(page.data.state).not.toBe('error')
    expect(status(page)).toBe('Paid, confirming…')
    expect(text(page.querySelector('#status') as Rendered, '.hint')).toBe('If you were charged, refresh later; do not pay again')
    expect(buttons(page)).toEqual(['Refresh'])
    expect(buttons(page)).not.toContain('Pay again')
    expect(page.querySelector('.pay')).toBeUndefined()
    expect(page.data.message).toBe('')
    expect(shop.wx.navigations).toEqual([{ how: 'redirectTo', url: `/pages/result/index?id=${order.id}&outcome=confirming` }])
    expect(shop.wx.sheets).toHaveLength(1)
  })
})

test('the order expired: says so, offers the shop, opens no sheet', async () => {
  const { shop, page } = await open('zh', (s, o) => s.server.nearExpiry(o.id))
  await pay(page)
  expect(page.data.state).toBe('expired')
  expect(status(page)).toBe('订单已过期，请重新下单')
  expect(buttons(page)).toEqual(['返回商店'])
  expect(shop.wx.sheets).toHaveLength(0)
  await pressStatusButton(page, 'shop')
  expect(shop.wx.navigations).toEqual([{ how: 'redirectTo', url: '/pages/products/index' }])
})

test('the order was closed meanwhile: "closed", opens no sheet', async () => {
  const { shop, page, order } = await open('en')
  shop.server.close(order.id)
  await pay(page)
  expect(page.data.state).toBe('closed')
  expect(status(page)).toBe('This order is closed')
  expect(text(page, '.status')).toBe('Closed')
  expect(shop.wx.sheets).toHaveLength(0)
})

test('an order already closed shows "closed" without a pay button', async () => {
  const { page } = await open('zh', (s, o) => s.server.close(o.id))
  expect(status(page)).toBe('订单已关闭')
  expect(page.querySelector('.pay')).toBeUndefined()
})

test('cancelling the order closes it', async () => {
  const { shop, page, order } = await open('zh')
  await tap(page, '.cancel-order')
  await until('the cancel to end', () => page.data.busy === false)
  expect(shop.server.orders.get(order.id)?.status).toBe('CLOSED')
  expect(status(page)).toBe('订单已关闭')
  expect(text(page, '.status')).toBe('已关闭')
})

test('a refused payment shows the mapped message with a retry, in English', async () => {
  const { shop, page } = await open('en')
  shop.server.fail('POST', /\/payment$/, {
    kind: 'status',
    status: 502,
    body: { code: 'payment_refused', message: 'the payment provider refused the request' },
  })
  await pay(page)
  expect(page.data.state).toBe('error')
  expect(status(page)).toBe('WeChat Pay refused this payment; contact the shop')
  expect(buttons(page)).toEqual(['Pay again'])
  // WeChat's refusal is final: not retried behind the user's back, and no sheet opened.
  expect(shop.server.requests('POST', /\/payment$/)).toHaveLength(1)
  expect(shop.wx.sheets).toHaveLength(0)
})
