/**
 * The API module against the fake Minipay: the session and the single re-login on 401,
 * retries and what is never retried, the Idempotency-Key, no amount ever sent, the payment
 * flow's outcomes and the polling policy, and the user-facing messages.
 */
import * as fs from 'fs'
import * as path from 'path'

import {
  MESSAGES,
  Minipay,
  MinipayError,
  isMinipayError,
  langOf,
  messageFor,
  newIdempotencyKey,
  outcomeMessage,
} from '../../miniprogram/api/minipay'
import type { MinipayConfig, PayProgress } from '../../miniprogram/api/minipay'
import { FakeServer, FakeWx } from '../support/fake'
import type { Fault } from '../support/fake'

const ORDER_PATH = /^\/api\/v1\/orders\/[^/]+$/

function setup(config: Partial<MinipayConfig> = {}) {
  const server = new FakeServer()
  const wx = new FakeWx(server)
  const client = new Minipay({
    wx,
    baseUrl: 'https://shop.test/',
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    // A long timeout: only the tests that want to see it run out shorten it.
    poll: { firstDelayMs: 1, factor: 2, maxDelayMs: 4, timeoutMs: 10_000 },
    ...config,
  })
  return { server, wx, client }
}

async function rejection(p: Promise<unknown>): Promise<MinipayError> {
  try {
    await p
  } catch (e) {
    if (isMinipayError(e)) return e
    throw e
  }
  throw new Error('expected the call to fail')
}

describe('session', () => {
  test('the first call that needs a session logs in with wx.login; later calls reuse the stored token', async () => {
    const { server, wx, client } = setup()
    const { order } = await client.createOrder([{ sku: 'TEA-JASMINE', quantity: 1 }])
    await client.order(order.id)
    expect(server.logins).toBe(1)
    expect(server.requests('POST', /^\/api\/v1\/sessions$/)[0].body).toEqual({ code: 'code-1' })
    expect(server.requests('GET', ORDER_PATH)[0].header.Authorization).toBe('Bearer token-1')
    expect(wx.storage.get('minipay.session')).toMatchObject({ token: 'token-1' })
  })

  test('the price list needs no session', async () => {
    const { server, client } = setup()
    const products = await client.products()
    expect(products.map((p) => p.sku)).toEqual(['TEA-JASMINE', 'TEA-OOLONG', 'CUP-CELADON'])
    expect(server.logins).toBe(0)
    expect(server.seen[0].path).toBe('/api/v1/products')
    expect(server.seen[0].header.Authorization).toBeUndefined()
  })

  test('an expired session (401) logs in again once and repeats the call', async () => {
    const { server, client } = setup()
    const { order } = await client.createOrder([{ sku: 'TEA-JASMINE', quantity: 1 }])
    server.expireSessions()
    const again = await client.order(order.id)
    expect(again.id).toBe(order.id)
    expect(server.logins).toBe(2)
    expect(server.requests('GET', ORDER_PATH).map((s) => [s.status, s.header.Authorization])).toEqual([
      [401, 'Bearer token-1'],
      [200, 'Bearer token-2'],
    ])
  })

  test('a second 401 after logging in again is an error, not a loop', async () => {
    const { server, client } = setup()
    const { order } = await client.createOrder([{ sku: 'TEA-JASMINE', quantity: 1 }])
    const unauthenticated = { kind: 'status' as const, status: 401, body: { code: 'unauthenticated', message: 'invalid session token' } }
    server.fail('GET', ORDER_PATH, unauthenticated, 5)
    const e = await rejection(client.order(order.id))
    expect(e.code).toBe('unauthenticated')
    expect(server.logins).toBe(2)
    expect(server.requests('GET', ORDER_PATH)).toHaveLength(2)
    expect(messageFor(e, 'zh')).toBe('登录已过期，请重新进入小程序')
  })

  test('calls that meet an expired session together log in once', async () => {
    const { server, client } = setup()
    const a = (await client.createOrder([{ sku: 'TEA-JASMINE', quantity: 1 }])).order
    const b = (await client.createOrder([{ sku: 'TEA-OOLONG', quantity: 1 }])).order
    server.expireSessions()
    const [x, y] = await Promise.all([client.order(a.id), client.order(b.id)])
    expect([x.id, y.id]).toEqual([a.id, b.id])
    expect(server.logins).toBe(2)
  })

  test('a stored session about to expire is renewed before the call, without a 401', async () => {
    let now = Date.UTC(2026, 0, 1)
    const { server, wx, client } = setup({ now: () => now })
    await client.login()
    now += 7200 * 1000 - 30_000 // 30 s left: under the margin
    await client.orders()
    expect(server.logins).toBe(2)
    expect(server.seen.filter((s) => s.status === 401)).toHaveLength(0)
    expect(wx.storage.get('minipay.session')).toMatchObject({ token: 'token-2' })
  })

  test('wx.login failing is login_unavailable, with a message for the user', async () => {
    const { wx, client } = setup()
    wx.loginFails = true
    const e = await rejection(client.orders())
    expect(e.code).toBe('login_unavailable')
    expect(messageFor(e, 'en')).toBe('Could not get a WeChat login; please try again')
  })

  test('a login whose answer was lost is retried with a fresh code (codes are single use)', async () => {
    const { server, client } = setup()
    server.fail('POST', /^\/api\/v1\/sessions$/, { kind: 'lose-answer' })
    await client.login()
    expect(server.requests('POST', /^\/api\/v1\/sessions$/).map((s) => s.body)).toEqual([{ code: 'code-1' }, { code: 'code-2' }])
  })
})

describe('orders', () => {
  test('only skus and quantities are sent, never an amount; the server prices the order', async () => {
    const { server, client } = setup()
    // A page might hand over whole product rows, prices included: they must not leave the client.
    const rows = [{ sku: 'TEA-JASMINE', quantity: 2, price_fen: 1, name: 'x' }]
    const { order } = await client.createOrder(rows)
    const sent = server.requests('POST', /^\/api\/v1\/orders$/)[0]
    expect(sent.body).toEqual({ items: [{ sku: 'TEA-JASMINE', quantity: 2 }] })
    expect(JSON.stringify(sent.body)).not.toMatch(/amount|price|total|fee/)
    expect(order.amount_fen).toBe(2 * 1999)
  })

  test('every create carries an Idempotency-Key; a retried tap with the same key gets the same order', async () => {
    const { server, client } = setup()
    const key = newIdempotencyKey()
    const first = await client.createOrder([{ sku: 'CUP-CELADON', quantity: 1 }], key)
    const again = await client.createOrder([{ sku: 'CUP-CELADON', quantity: 1 }], key)
    expect(again.order.id).toBe(first.order.id)
    expect([first.replayed, again.replayed]).toEqual([false, true])
    expect(server.orders.size).toBe(1)
    expect(server.requests('POST', /^\/api\/v1\/orders$/).map((s) => s.header['Idempotency-Key'])).toEqual([key, key])
  })

  test('a create whose answer was lost is retried with its key: one order, not two', async () => {
    const { server, client } = setup()
    server.fail('POST', /^\/api\/v1\/orders$/, { kind: 'lose-answer' })
    const { order, replayed } = await client.createOrder([{ sku: 'TEA-OOLONG', quantity: 3 }])
    expect(replayed).toBe(true)
    expect(server.orders.size).toBe(1)
    expect(server.orders.has(order.id)).toBe(true)
    const keys = server.requests('POST', /^\/api\/v1\/orders$/).map((s) => s.header['Idempotency-Key'])
    expect(keys).toHaveLength(2)
    expect(keys[0]).toBe(keys[1])
  })

  test('keys are visible ASCII, at most 64 characters, and unique', () => {
    const keys = new Set<string>()
    for (let i = 0; i < 1000; i++) {
      const k = newIdempotencyKey()
      expect(k).toMatch(/^[!-~]{1,64}$/)
      keys.add(k)
    }
    expect(keys.size).toBe(1000)
  })

  test('a cancelled order is CLOSED', async () => {
    const { client } = setup()
    const { order } = await client.createOrder([{ sku: 'TEA-JASMINE', quantity: 1 }])
    expect((await client.cancel(order.id)).status).toBe('CLOSED')
  })
})

describe('retries', () => {
  test('503 payment_unavailable is retried after Retry-After (capped by the policy)', async () => {
    const sleeps: number[] = []
    const { server, wx, client } = setup({
      retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 10_000 },
      sleep: async (ms) => {
        sleeps.push(ms)
      },
    })
    const { order } = await client.createOrder([{ sku: 'TEA-JASMINE', quantity: 1 }])
    server.fail('POST', /\/payment$/, {
      kind: 'status',
      status: 503,
      body: { code: 'payment_unavailable', message: 'the payment service is unavailable; try again shortly' },
      header: { 'Retry-After': '2' },
    })
    wx.user('pay')
    const outcome = await client.pay(order.id)
    expect(outcome.kind).toBe('paid')
    expect(sleeps[0]).toBe(2000)
    expect(server.requests('POST', /\/payment$/).map((s) => s.status)).toEqual([503, 200])
  })

  test('network failures are retried with backoff, then reported as network_error', async () => {
    const sleeps: number[] = []
    const { server, client } = setup({
      sleep: async (ms) => {
        sleeps.push(ms)
      },
    })
    server.fail('GET', /^\/api\/v1\/products$/, { kind: 'drop' }, 3)
    const e = await rejection(client.products())
    expect(e.code).toBe('network_error')
    expect(e.status).toBe(0)
    expect(server.requests('GET', /products/)).toHaveLength(3)
    expect(sleeps).toEqual([1, 2])
    expect(messageFor(e, 'zh')).toBe('网络连接失败，请检查网络后重试')
  })

  test("a gateway's non-JSON 502 is retried; its 429 is not, and reads as rate_limited", async () => {
    const { server, client } = setup()
    server.fail('GET', /^\/api\/v1\/products$/, { kind: 'status', status: 502, body: 'upstream connect error' })
    expect(await client.products()).toHaveLength(3)
    server.fail('POST', /^\/api\/v1\/sessions$/, { kind: 'status', status: 429, body: 'local_rate_limited' })
    const e = await rejection(client.login())
    expect(e.code).toBe('rate_limited')
    expect(server.requests('POST', /sessions/)).toHaveLength(1)
    expect(messageFor(e, 'en')).toBe('Too many attempts; wait a moment and try again')
  })

  test("the gateway's 404 for a route it does not expose reads as not_found, not retried", async () => {
    const { server, client } = setup()
    const bodies: [unknown, string][] = [
      // What the gateway answers: flat, like the API's errors.
      [{ code: 'not_found', message: 'no such route' }, 'no such route'],
      // The same as text (no JSON content type), and nested under `error`.
      ['{"code":"not_found","message":"no such route"}', 'no such route'],
      [{ error: { code: 'not_found', message: 'no such route' } }, 'no such route'],
      // No body to read: the status says it.
      ['404 page not found', 'HTTP 404'],
    ]
    for (const [body, message] of bodies) {
      server.fail('GET', /^\/api\/v1\/products$/, { kind: 'status', status: 404, body, header: { 'content-type': 'application/json' } })
      const e = await rejection(client.products())
      expect([e.code, e.status, e.message]).toEqual(['not_found', 404, message])
      expect(messageFor(e, 'zh')).toBe('服务地址有误，请联系商家')
      expect(messageFor(e, 'en')).toBe('This service is not available here; contact the shop')
    }
    expect(server.requests('GET', /products/)).toHaveLength(bodies.length)
  })

  test("WeChat's refusal (502 payment_refused) is final: not retried", async () => {
    const { server, client } = setup()
    const { order } = await client.createOrder([{ sku: 'TEA-JASMINE', quantity: 1 }])
    server.fail('POST', /\/payment$/, { kind: 'status', status: 502, body: { code: 'payment_refused', message: 'refused' } })
    const e = await rejection(client.prepay(order.id))
    expect(e.code).toBe('payment_refused')
    expect(server.requests('POST', /\/payment$/)).toHaveLength(1)
  })

  test('client errors are not retried', async () => {
    const { server, client } = setup()
    const e = await rejection(client.createOrder([{ sku: 'NO-SUCH', quantity: 1 }]))
    expect(e.code).toBe('unknown_sku')
    expect(e.status).toBe(400)
    expect(server.requests('POST', /^\/api\/v1\/orders$/)).toHaveLength(1)
  })
})

describe('paying', () => {
  async function placed(s: ReturnType<typeof setup>) {
    return (await s.client.createOrder([{ sku: 'TEA-JASMINE', quantity: 1 }])).order
  }

  test('paid: the server’s object goes to wx.requestPayment as is, then the poll sees PAID', async () => {
    const s = setup()
    const order = await placed(s)
    s.wx.user('pay')
    const progress: PayProgress['state'][] = []
    const outcome = await s.client.pay(order.id, { onProgress: (p) => progress.push(p.state) })
    expect(outcome.kind).toBe('paid')
    expect(outcome.kind === 'paid' && outcome.order.transaction_id).toMatch(/^4200/)
    expect(progress).toEqual(['paying', 'confirming'])
    const sheet = s.wx.sheets[0]
    expect(Object.keys(sheet).sort()).toEqual(['fail', 'nonceStr', 'package', 'paySign', 'signType', 'success', 'timeStamp'])
    expect(sheet.package).toBe(`prepay_id=wx${order.out_trade_no}`)
    expect(sheet.signType).toBe('HMAC-SHA256')
  })

  test('API v3: an RSA-signed object goes to wx.requestPayment as is', async () => {
    const s = setup()
    s.server.signType = 'RSA'
    const order = await placed(s)
    s.wx.user('pay')
    expect((await s.client.pay(order.id)).kind).toBe('paid')
    expect(s.wx.sheets[0].signType).toBe('RSA')
    expect(s.wx.sheets[0].paySign).toHaveLength(344)
  })

  test('cancelled: no poll, the order stays payable, and the retry reuses the same prepay', async () => {
    const s = setup()
    const order = await placed(s)
    s.wx.user('cancel', 'pay')
    expect(await s.client.pay(order.id)).toEqual({ kind: 'cancelled' })
    expect(s.server.requests('GET', ORDER_PATH)).toHaveLength(0)
    expect((await s.client.order(order.id)).status).toBe('PENDING')
    const second = await s.client.pay(order.id)
    expect(second.kind).toBe('paid')
    expect(s.wx.sheets.map((x) => x.package)).toEqual([`prepay_id=wx${order.out_trade_no}`, `prepay_id=wx${order.out_trade_no}`])
    expect(outcomeMessage({ kind: 'cancelled' })).toBe('payment_cancelled')
  })

  test('the sheet fails: "failed" with its errMsg, after asking the server once', async () => {
    const s = setup()
    const order = await placed(s)
    s.wx.user({ fail: 'requestPayment:fail (detail message)' })
    const outcome = await s.client.pay(order.id)
    expect(outcome).toEqual({ kind: 'failed', errMsg: 'requestPayment:fail (detail message)' })
    expect(s.server.requests('GET', ORDER_PATH)).toHaveLength(1)
    expect(s.server.orders.get(order.id)?.status).toBe('PENDING')
  })

  test('the sheet fails but the server says PAID: paid (the sheet is not the proof either way)', async () => {
    const s = setup()
    const order = await placed(s)
    s.server.confirmAfterReads(order.id, 0)
    s.wx.user({ fail: 'requestPayment:fail system error' })
    expect((await s.client.pay(order.id)).kind).toBe('paid')
  })

  test('a late notification: polls with backoff until PAID', async () => {
    const s = setup()
    const order = await placed(s)
    s.wx.user({ pay: 'late', afterReads: 3 })
    const attempts: number[] = []
    const outcome = await s.client.pay(order.id, {
      onProgress: (p) => {
        if (p.state === 'confirming') attempts.push(p.attempt)
      },
    })
    expect(outcome.kind).toBe('paid')
    expect(attempts).toEqual([1, 2, 3, 4])
    expect(s.server.requests('GET', ORDER_PATH)).toHaveLength(4)
  })

  test('never confirmed within the timeout: "confirming" (paid, confirming…), not failed', async () => {
    const s = setup({ poll: { firstDelayMs: 1, factor: 2, maxDelayMs: 4, timeoutMs: 50 } })
    const order = await placed(s)
    s.wx.user({ pay: 'never-confirmed' })
    const outcome = await s.client.pay(order.id)
    expect(outcome.kind).toBe('confirming')
    expect(outcome.kind === 'confirming' && outcome.order?.status).toBe('PENDING')
    expect(messageFor(outcomeMessage(outcome), 'zh')).toBe('支付成功，正在确认…')
    expect(messageFor(outcomeMessage(outcome), 'en')).toBe('Paid, confirming…')
  })

  test('the network drops mid-poll: polling goes on and ends PAID', async () => {
    const s = setup()
    const order = await placed(s)
    s.wx.user({ pay: 'late', afterReads: 1 })
    s.server.fail('GET', ORDER_PATH, { kind: 'drop' }, 3)
    const failures: number[] = []
    const outcome = await s.client.pay(order.id, {
      onProgress: (p) => {
        if (p.state === 'confirming') failures.push(p.networkFailures)
      },
    })
    expect(outcome.kind).toBe('paid')
    expect(failures.slice(0, 4)).toEqual([0, 1, 2, 3])
    expect(s.server.requests('GET', ORDER_PATH).map((x) => x.status)).toEqual(['dropped', 'dropped', 'dropped', 200, 200])
  })

  test('the poll stops on CLOSED', async () => {
    const s = setup()
    const order = await placed(s)
    s.wx.user({ pay: 'never-confirmed' })
    const outcome = await s.client.pay(order.id, {
      onProgress: (p) => {
        if (p.state === 'confirming' && p.attempt === 2) s.server.close(order.id)
      },
    })
    expect(outcome.kind).toBe('closed')
    // pay() has returned: the poll is over, after the query that saw CLOSED.
    expect(s.server.requests('GET', ORDER_PATH)).toHaveLength(2)
  })

  test('an order too close to expiry is "expired"; a closed one "closed"; a paid one "paid" — no sheet opens', async () => {
    const s = setup()
    const expiring = await placed(s)
    s.server.nearExpiry(expiring.id)
    expect((await s.client.pay(expiring.id)).kind).toBe('expired')
    const closed = await placed(s)
    s.server.close(closed.id)
    expect((await s.client.pay(closed.id)).kind).toBe('closed')
    const paid = await placed(s)
    s.server.confirmPayment(paid.id)
    expect((await s.client.pay(paid.id)).kind).toBe('paid')
    expect(s.wx.sheets).toHaveLength(0)
  })

  describe('after the sheet said paid, a query that fails for good is "confirming", never an error', () => {
    const cases: [string, Fault, number, string, number][] = [
      // The first 401 logs in again; the second is final.
      ['401 after logging in again once', { kind: 'status', status: 401, body: { code: 'unauthenticated', message: 'session token expired; log in again' } }, 2, 'unauthenticated', 401],
      ['404 order_not_found', { kind: 'status', status: 404, body: { code: 'order_not_found', message: 'order not found' } }, 1, 'order_not_found', 404],
      ["the gateway's 404 for a route it does not expose", { kind: 'status', status: 404, body: { code: 'not_found', message: 'no such route' } }, 1, 'not_found', 404],
      ['429 from the gateway', { kind: 'status', status: 429, body: 'local_rate_limited', header: { 'Retry-After': '1' } }, 1, 'rate_limited', 429],
      ['a 200 that is not JSON', { kind: 'status', status: 200, body: '<html>portal</html>' }, 1, 'bad_response', 200],
      ['a 200 that is not an order', { kind: 'status', status: 200, body: { ok: true } }, 1, 'bad_response', 200],
    ]

    test.each(cases)('%s', async (_name, fault, times, code, status) => {
      const s = setup()
      const order = await placed(s)
      s.wx.user({ pay: 'never-confirmed' })
      s.server.fail('GET', ORDER_PATH, fault, times)
      const progress: PayProgress['state'][] = []
      const outcome = await s.client.pay(order.id, { onProgress: (p) => progress.push(p.state) })
      expect(outcome.kind).toBe('confirming')
      expect(outcome.kind === 'confirming' && outcome.order).toBeUndefined()
      const error = outcome.kind === 'confirming' ? outcome.error : undefined
      expect([error?.code, error?.status]).toEqual([code, status])
      expect(messageFor(outcomeMessage(outcome), 'zh')).toBe('支付成功，正在确认…')
      expect(messageFor(outcomeMessage(outcome), 'en')).toBe('Paid, confirming…')
      expect(progress).toEqual(['paying', 'confirming'])
      // The failure ended the poll: no query after it, and one sheet only.
      expect(s.server.requests('GET', ORDER_PATH)).toHaveLength(times)
      expect(s.wx.sheets).toHaveLength(1)
      expect(s.server.logins).toBe(times === 2 ? 2 : 1)
    })

    test('the last order the poll read is kept', async () => {
      const s = setup()
      const order = await placed(s)
      s.wx.user({ pay: 'never-confirmed' })
      const outcome = await s.client.pay(order.id, {
        onProgress: (p) => {
          if (p.state === 'confirming' && p.attempt === 3) {
            s.server.fail('GET', ORDER_PATH, { kind: 'status', status: 404, body: { code: 'order_not_found', message: 'order not found' } })
          }
        },
      })
      expect(outcome.kind).toBe('confirming')
      expect(outcome.kind === 'confirming' && outcome.order?.status).toBe('PENDING')
      expect(outcome.kind === 'confirming' && outcome.error?.code).toBe('order_not_found')
      expect(s.server.requests('GET', ORDER_PATH).map((x) => x.status)).toEqual([200, 200, 404])
    })

    test('waitForResult alone still rejects with the failure (the caller knows whether the sheet said paid)', async () => {
      const s = setup()
      const order = await placed(s)
      s.server.fail('GET', ORDER_PATH, { kind: 'status', status: 429, body: 'local_rate_limited' })
      expect((await rejection(s.client.waitForResult(order.id))).code).toBe('rate_limited')
    })
  })

  test('before the sheet, a failed call still rejects: no sheet opens', async () => {
    const s = setup()
    const order = await placed(s)
    s.server.fail('POST', /\/payment$/, { kind: 'status', status: 404, body: { code: 'not_found', message: 'no such route' } })
    const e = await rejection(s.client.pay(order.id))
    expect(e.code).toBe('not_found')
    expect(s.wx.sheets).toHaveLength(0)
  })

  test('the session expires between the order and the payment: logs in again once and pays', async () => {
    const s = setup()
    const order = await placed(s)
    s.server.expireSessions()
    s.wx.user('pay')
    expect((await s.client.pay(order.id)).kind).toBe('paid')
    expect(s.server.logins).toBe(2)
    expect(s.server.requests('POST', /\/payment$/).map((x) => x.status)).toEqual([401, 200])
  })
})

describe('the poll policy', () => {
  test('first query at once, then waits growing by the factor up to the cap, until the timeout', async () => {
    let now = 0
    const sleeps: number[] = []
    const s = setup({
      now: () => now,
      sleep: async (ms) => {
        sleeps.push(ms)
        now += ms
      },
      poll: { firstDelayMs: 1, factor: 2, maxDelayMs: 4, timeoutMs: 20 },
    })
    const { order } = await s.client.createOrder([{ sku: 'TEA-JASMINE', quantity: 1 }])
    const result = await s.client.waitForResult(order.id)
    expect(result.kind).toBe('pending')
    expect(sleeps).toEqual([1, 2, 4, 4, 4, 4, 1])
    expect(s.server.requests('GET', ORDER_PATH)).toHaveLength(8)
  })

  test('stop() ends the wait at once (the page was left)', async () => {
    const s = setup({ poll: { firstDelayMs: 1, factor: 1, maxDelayMs: 1, timeoutMs: 60_000 } })
    const { order } = await s.client.createOrder([{ sku: 'TEA-JASMINE', quantity: 1 }])
    let left = false
    const waiting = s.client.waitForResult(order.id, {
      onAttempt: (attempt) => {
        if (attempt === 3) left = true
      },
      stop: () => left,
    })
    expect((await waiting).kind).toBe('pending')
    expect(s.server.requests('GET', ORDER_PATH)).toHaveLength(3)
  })

  test('an error that is not transient (404) ends the poll with that error', async () => {
    const s = setup()
    await s.client.login()
    const e = await rejection(s.client.waitForResult('00000000-0000-4000-8000-999999999999'))
    expect(e.code).toBe('order_not_found')
  })
})

describe('messages', () => {
  test('every code has a Chinese and an English message', () => {
    for (const [code, [zh, en]] of Object.entries(MESSAGES)) {
      expect([code, /[\u4e00-\u9fff]/.test(zh)]).toEqual([code, true])
      expect([code, /^[\x20-\x7e…]+$/.test(en)]).toEqual([code, true])
      expect(messageFor(code, 'zh')).toBe(zh)
      expect(messageFor(code, 'en')).toBe(en)
    }
  })

  test("every error code order-svc answers has a message (read from order-svc's error.rs)", () => {
    const source = fs.readFileSync(path.resolve(__dirname, '../../../../../order-svc/src/error.rs'), 'utf8')
    const body = source.slice(source.indexOf('pub fn code(&self)'), source.indexOf('pub fn http_status'))
    const codes = [...body.matchAll(/=> "([a-z_]+)"/g)].map((m) => m[1])
    expect(codes.length).toBeGreaterThanOrEqual(15)
    expect(codes.filter((c) => !(c in MESSAGES))).toEqual([])
  })

  test('unknown codes and foreign errors fall back to the generic message', () => {
    expect(messageFor('something_new', 'en')).toBe(MESSAGES.internal[1])
    expect(messageFor(new TypeError('x'), 'zh')).toBe(MESSAGES.internal[0])
    expect(messageFor(new MinipayError('order_not_payable', 409, 'the order is PAID'), 'zh')).toBe('订单已支付、已关闭或即将过期，无法支付')
  })

  test('the language follows the system language', () => {
    expect(langOf('zh_CN')).toBe('zh')
    expect(langOf('zh_HK')).toBe('zh')
    expect(langOf('en')).toBe('en')
    expect(langOf(undefined)).toBe('en')
  })
})

describe('configuration', () => {
  test('the base URL must be an http(s) origin; a trailing slash is dropped', async () => {
    expect(() => new Minipay({ wx: new FakeWx(new FakeServer()), baseUrl: 'shop.test' })).toThrow(/baseUrl/)
    const server = new FakeServer()
    const urls: string[] = []
    const wx = new FakeWx(server)
    const request = wx.request.bind(wx)
    wx.request = (o) => {
      urls.push(o.url)
      request(o)
    }
    await new Minipay({ wx, baseUrl: 'https://shop.test///' }).products()
    expect(urls).toEqual(['https://shop.test/api/v1/products'])
  })
})
