/**
 * End to end: the Mini Program's API module (miniprogram/api/minipay.ts, unchanged) against a
 * real Minipay through its real gateway, with `wx` played by ./wx-adapter. Run by
 * `npm run test:e2e` with
 *
 *   MINIPAY_API_URL  the gateway's https base URL        (e.g. https://127.0.0.1:8443)
 *   MINIPAY_SIM_URL  the simulator's control API, http   (e.g. http://127.0.0.1:8090)
 *   MINIPAY_CA_FILE  the PEM of the CA that signed the gateway's certificate
 *
 * and optionally MINIPAY_E2E_APPID / MINIPAY_E2E_API_KEY (the merchant paySign is checked
 * with; default: the simulator's default merchant). Prints one line per case and exits 0 only
 * if every case passed. It stays far under the gateway's per-client limits (10 logins and 30
 * new orders a minute): 2 logins, 7 order-creation requests.
 */
import * as fs from 'fs'

import { Minipay, isMinipayError, messageFor } from '../../miniprogram/api/minipay'
import type { Order, Product } from '../../miniprogram/api/minipay'
import { NodeWx, simCall } from './wx-adapter'
import type { Env } from './wx-adapter'

const SIM_APPID = 'wxd930ea5d5a258f4f'
const SIM_API_KEY = '192006250b4c09247ec02edce69f6a2d'
const CASE_DEADLINE_MS = 60_000
const ORDER_PATH = /^\/api\/v1\/orders\/[^/]+$/

function readEnv(): Env {
  const missing = ['MINIPAY_API_URL', 'MINIPAY_SIM_URL', 'MINIPAY_CA_FILE'].filter((v) => !process.env[v])
  if (missing.length > 0) {
    throw new Error(
      `missing ${missing.join(', ')}: the end-to-end test needs a running Minipay behind its gateway, e.g.\n` +
        '  minipay up --gateway   (prints the gateway URL, the simulator URL and the CA file), then\n' +
        '  MINIPAY_API_URL=https://127.0.0.1:8443 MINIPAY_SIM_URL=http://127.0.0.1:8090 \\\n' +
        '  MINIPAY_CA_FILE=.minipay/gateway/ca.pem npm run test:e2e',
    )
  }
  const apiUrl = process.env.MINIPAY_API_URL!
  const simUrl = process.env.MINIPAY_SIM_URL!
  const caFile = process.env.MINIPAY_CA_FILE!
  if (!apiUrl.startsWith('https://')) throw new Error(`MINIPAY_API_URL must be the gateway's https URL, got ${apiUrl}`)
  if (!/^https?:\/\//.test(simUrl)) throw new Error(`MINIPAY_SIM_URL must be an http URL, got ${simUrl}`)
  let ca: string
  try {
    ca = fs.readFileSync(caFile, 'utf8')
  } catch (e) {
    throw new Error(`MINIPAY_CA_FILE=${caFile} cannot be read: ${(e as Error).message}`)
  }
  if (!ca.includes('BEGIN CERTIFICATE')) throw new Error(`MINIPAY_CA_FILE=${caFile} is not a PEM certificate`)
  return {
    apiUrl,
    simUrl,
    ca,
    caFile,
    appId: process.env.MINIPAY_E2E_APPID || SIM_APPID,
    apiKey: process.env.MINIPAY_E2E_API_KEY || SIM_API_KEY,
  }
}

function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(what)
}

function equal<T>(actual: T, expected: T, what: string): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`)
  }
}

/** A value an earlier case made; if it failed, this case fails saying so. */
function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`needs ${what} from an earlier case, which failed`)
  return value
}

async function simState(env: Env, order: Order): Promise<string> {
  const { status, body } = await simCall(env, 'GET', `/sim/v1/orders/${encodeURIComponent(order.out_trade_no)}`)
  check(status === 200, `the simulator does not know ${order.out_trade_no}: ${status} ${JSON.stringify(body)}`)
  return (body as { state: string }).state
}

async function main(): Promise<number> {
  let env: Env
  try {
    env = readEnv()
  } catch (e) {
    console.error(`e2e: ${(e as Error).message}`)
    return 2
  }
  console.log(`e2e: Minipay at ${env.apiUrl} (CA ${env.caFile}), simulator at ${env.simUrl}`)

  // One user, one client, as one Mini Program would have: the session carries across cases.
  const user = `e2e${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`
  const wx = new NodeWx(env, user)
  const minipay = new Minipay({ wx, baseUrl: env.apiUrl, poll: { timeoutMs: 20_000 } })
  let product: Product | undefined
  /** The order the expired-session case makes, which the CLOSED case closes. */
  let closing: Order | undefined

  const cases: [string, () => Promise<string>][] = [
    [
      'the price list comes through the gateway without a session',
      async () => {
        const products = await minipay.products()
        check(products.length > 0, 'the price list is empty')
        product = [...products].sort((a, b) => a.price_fen - b.price_fen)[0]
        equal(wx.logins, 0, 'logins for the price list')
        return `${products.length} products; buying ${product.sku} at ${product.price_fen} fen`
      },
    ],
    [
      'a purchase ends PAID: retried tap gives the same order, a dropped poll is survived',
      async () => {
        const p = need(product, 'the price list')
        const key = `e2e-${user}-1`
        const first = await minipay.createOrder([{ sku: p.sku, quantity: 2 }], key)
        equal(first.order.amount_fen, 2 * p.price_fen, 'the amount the server computed')
        equal(first.order.status, 'PENDING', 'a new order')
        const again = await minipay.createOrder([{ sku: p.sku, quantity: 2 }], key)
        equal([again.order.id, again.replayed], [first.order.id, true], 'the retried tap (same Idempotency-Key)')
        wx.userWill('pay', first.order.out_trade_no)
        wx.dropNext('GET', ORDER_PATH)
        const outcome = await minipay.pay(first.order.id)
        equal(outcome.kind, 'paid', 'the outcome')
        check(outcome.kind === 'paid' && outcome.order.transaction_id, 'a paid order has WeChat’s transaction_id')
        equal(await simState(env, first.order), 'SUCCESS', "the simulator's state")
        const polls = wx.sent.filter((s) => s.method === 'GET' && ORDER_PATH.test(s.path)).map((s) => s.status)
        equal(polls[0], 'dropped', 'the first poll was dropped')
        check(polls.includes(200), 'a later poll went through')
        equal(wx.logins, 1, 'logins')
        return `${first.order.out_trade_no} PAID (transaction ${outcome.order.transaction_id}) after ${polls.length} polls`
      },
    ],
    [
      'a cancelled sheet leaves the order payable; the second attempt pays it with the same prepay',
      async () => {
        const { order } = await minipay.createOrder([{ sku: need(product, 'the price list').sku, quantity: 1 }])
        const sheetsBefore = wx.sheets.length
        wx.userWill('cancel', order.out_trade_no)
        equal((await minipay.pay(order.id)).kind, 'cancelled', 'the first attempt')
        equal((await minipay.order(order.id)).status, 'PENDING', 'the order after the cancelled sheet')
        equal(await simState(env, order), 'NOTPAY', "the simulator's state after the cancelled sheet")
        wx.userWill('pay', order.out_trade_no)
        equal((await minipay.pay(order.id)).kind, 'paid', 'the second attempt')
        const packages = wx.sheets.slice(sheetsBefore).map((s) => s.package)
        equal(packages.length, 2, 'sheets opened')
        equal(packages[1], packages[0], 'the prepay of the second attempt')
        return `${order.out_trade_no}: cancelled, then PAID with ${packages[0]}`
      },
    ],
    [
      'a failed sheet is "failed", not paid; the order stays payable and a retry pays it',
      async () => {
        const { order } = await minipay.createOrder([{ sku: need(product, 'the price list').sku, quantity: 1 }])
        wx.userWill('fail', order.out_trade_no)
        const outcome = await minipay.pay(order.id)
        equal(outcome.kind, 'failed', 'the outcome of the failed sheet')
        equal((await minipay.order(order.id)).status, 'PENDING', 'the order after the failed sheet')
        wx.userWill('pay', order.out_trade_no)
        equal((await minipay.pay(order.id)).kind, 'paid', 'the retry')
        return `${order.out_trade_no}: ${outcome.kind === 'failed' ? outcome.errMsg : ''}, then PAID`
      },
    ],
    [
      'an expired session recovers: one 401, one new login, the call goes through',
      async () => {
        const stored = wx.getStorageSync('minipay.session') as { token: string; expiresAt: number } | ''
        check(stored && stored.token, 'needs the session of an earlier case, which failed')
        // A token the server no longer accepts (its signature no longer matches), as an
        // expired one: the client still thinks it is valid.
        const last = stored.token.slice(-1)
        wx.setStorageSync('minipay.session', { ...stored, token: stored.token.slice(0, -1) + (last === 'A' ? 'B' : 'A') })
        const loginsBefore = wx.logins
        const sentBefore = wx.sent.length
        const { order } = await minipay.createOrder([{ sku: need(product, 'the price list').sku, quantity: 1 }])
        equal(order.status, 'PENDING', 'the order created after logging in again')
        equal(wx.logins - loginsBefore, 1, 'new logins')
        const creates = wx.sent.slice(sentBefore).filter((s) => s.method === 'POST' && s.path === '/api/v1/orders')
        equal(creates.map((s) => s.status), [401, 201], 'the create, before and after logging in again')
        closing = order
        return `401, logged in again, ${order.out_trade_no} created`
      },
    ],
    [
      'the poll stops on CLOSED',
      async () => {
        const order = need(closing, 'the order of the expired-session case')
        await minipay.prepay(order.id) // WeChat knows the order: the cancel closes it there too
        let attempts = 0
        const started = Date.now()
        const waiting = minipay.waitForResult(order.id, { onAttempt: (a) => (attempts = a) })
        const closed = await minipay.cancel(order.id)
        equal(closed.status, 'CLOSED', 'the cancelled order')
        const result = await waiting
        equal(result.kind, 'closed', 'the poll’s outcome')
        check(Date.now() - started < 15_000, 'the poll ended well before its timeout')
        equal(await simState(env, order), 'CLOSED', "the simulator's state")
        return `${order.out_trade_no} CLOSED; the poll ended after ${attempts} queries`
      },
    ],
    [
      'the server refuses an amount from a client (which is why the module never sends one)',
      async () => {
        const token = (minipay.session() ?? (await minipay.login())).token
        const res = await new Promise<{ statusCode: number; data: unknown }>((resolve, reject) =>
          wx.request({
            url: `${env.apiUrl.replace(/\/+$/, '')}/api/v1/orders`,
            method: 'POST',
            data: { items: [{ sku: need(product, 'the price list').sku, quantity: 1, price_fen: 1 }] },
            header: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
            timeout: 10_000,
            dataType: 'json',
            success: resolve,
            fail: (e) => reject(new Error(e.errMsg)),
          }),
        )
        equal(res.statusCode, 400, 'the status')
        const code = (res.data as { code?: string }).code
        equal(code, 'amount_not_accepted', 'the code')
        return `400 ${code}: “${messageFor(code!, 'zh')}” / “${messageFor(code!, 'en')}”`
      },
    ],
  ]

  let passed = 0
  let failed = 0
  for (const [name, run] of cases) {
    const started = Date.now()
    try {
      const detail = await Promise.race([
        run(),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no result within ${CASE_DEADLINE_MS / 1000} s`)), CASE_DEADLINE_MS).unref()),
      ])
      passed++
      console.log(`ok    ${name} (${Date.now() - started} ms): ${detail}`)
    } catch (e) {
      failed++
      const why = isMinipayError(e) ? `${e.code} (HTTP ${e.status}): ${e.message}` : (e as Error).message
      console.log(`FAIL  ${name} (${Date.now() - started} ms): ${why}`)
    }
  }
  wx.close()
  console.log(`e2e: ${passed} passed, ${failed} failed`)
  return failed === 0 && passed === cases.length ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
