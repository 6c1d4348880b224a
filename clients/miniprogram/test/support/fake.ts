/**
 * An in-memory stand-in for Minipay's HTTP API (the shapes, status codes and error codes of
 * order-svc's `/api/v1`) behind a fake `wx`: `wx.request` reaches the fake server, `wx.login`
 * hands out codes, `wx.requestPayment` does what the test says the user does. Faults are
 * scripted per call: a dropped connection, a 503, an expired session.
 */
import type { Order, OrderStatus, Product, WxLike, WxPaymentOptions, WxRequestOptions, WxResponse } from '../../miniprogram/api/minipay'

export const PRODUCTS: Product[] = [
  { sku: 'TEA-JASMINE', name: 'Jasmine tea, 100 g', price_fen: 1999 },
  { sku: 'TEA-OOLONG', name: 'Oolong tea, 100 g', price_fen: 2999 },
  { sku: 'CUP-CELADON', name: 'Celadon cup', price_fen: 4500 },
]

const AMOUNT_FIELDS = ['amount', 'amount_fen', 'price', 'price_fen', 'unit_price_fen', 'total', 'total_fee', 'total_fen']

/** One request as the server saw it. */
export interface Seen {
  method: string
  path: string
  header: Record<string, string>
  body: Record<string, unknown> | undefined
  status: number | 'dropped'
}

/** A scripted fault: what the next matching request gets instead of its answer. */
export type Fault =
  | { kind: 'drop' } // the connection fails before the server sees the request
  | { kind: 'lose-answer' } // the server does the work, the answer is lost on the way back
  | { kind: 'status'; status: number; body: unknown; header?: Record<string, string> }

interface StoredOrder extends Order {
  owner: string
  prepay: string | undefined
  /** Becomes PAID after this many more reads (the notification arriving late). */
  paidAfterReads: number | undefined
  /** The moment the server stops taking payments for it (expiry minus the pay window). */
  payableUntil: number
}

export class FakeServer {
  readonly seen: Seen[] = []
  readonly orders = new Map<string, StoredOrder>()
  private readonly faults: { method: string; path: RegExp; fault: Fault }[] = []
  private readonly tokens = new Map<string, { user: string; valid: boolean }>()
  private readonly usedCodes = new Set<string>()
  private readonly idempotency = new Map<string, { body: string; id: string }>()
  private nextId = 1
  /** How the payment objects it answers are signed (`RSA`: a merchant on API v3). */
  signType: 'MD5' | 'HMAC-SHA256' | 'RSA' = 'HMAC-SHA256'
  private now = Date.UTC(2026, 11, 2, 1, 0, 0)

  /** The next `times` requests matching `method path` get `fault`. */
  fail(method: string, path: RegExp, fault: Fault, times = 1): void {
    for (let i = 0; i < times; i++) this.faults.push({ method, path, fault })
  }

  /** Every session issued so far stops being valid (as when it expires). */
  expireSessions(): void {
    for (const t of this.tokens.values()) t.valid = false
  }

  /** Sessions issued so far. */
  get logins(): number {
    return this.tokens.size
  }

  /** The notification arrives: the order becomes PAID. */
  confirmPayment(id: string): void {
    const o = this.must(id)
    o.status = 'PAID'
    o.paid_at = new Date(this.now).toISOString()
    o.transaction_id = `42000000002026120${String(this.nextId++).padStart(11, '0')}`
  }

  /** The order becomes PAID once it has been read `reads` more times. */
  confirmAfterReads(id: string, reads: number): void {
    this.must(id).paidAfterReads = reads
  }

  /** The order has expired and been closed by the sweeper (or cancelled elsewhere). */
  close(id: string): void {
    this.must(id).status = 'CLOSED'
  }

  /** The order is too close to its expiry to be paid (the server answers 409). */
  nearExpiry(id: string): void {
    this.must(id).payableUntil = this.now - 1
  }

  /** An order as created through the API, for tests that start further on. */
  seed(owner: string, lines: { sku: string; quantity: number }[]): Order {
    return this.create(owner, lines)
  }

  requests(method: string, path: RegExp): Seen[] {
    return this.seen.filter((s) => s.method === method && path.test(s.path))
  }

  /** wx.request, answered asynchronously like the real one. */
  handle(options: WxRequestOptions): void {
    const url = new URL(options.url)
    const path = url.pathname + url.search
    const header = { ...options.header }
    const body = options.data
    const seen: Seen = { method: options.method, path, header, body, status: 'dropped' }
    this.seen.push(seen)
    const i = this.faults.findIndex((f) => f.method === options.method && f.path.test(url.pathname))
    const fault = i >= 0 ? this.faults.splice(i, 1)[0].fault : undefined
    setTimeout(() => {
      if (fault?.kind === 'drop') {
        options.fail({ errMsg: 'request:fail timeout' })
        return
      }
      const res: WxResponse =
        fault?.kind === 'status'
          ? { statusCode: fault.status, data: fault.body, header: fault.header ?? {} }
          : this.route(options.method, url.pathname, header, body)
      seen.status = res.statusCode
      if (fault?.kind === 'lose-answer') options.fail({ errMsg: 'request:fail timeout' })
      else options.success(res)
    }, 0)
  }

  private route(method: string, path: string, header: Record<string, string>, body: Record<string, unknown> | undefined): WxResponse {
    if (method === 'POST' && path === '/api/v1/sessions') return this.login(body)
    if (method === 'GET' && path === '/api/v1/products') return ok({ products: PRODUCTS })
    if (!path.startsWith('/api/v1/')) return error(404, 'not_found', 'no such endpoint')
    const auth = header.Authorization ?? ''
    const session = this.tokens.get(auth.replace(/^Bearer /, ''))
    if (!auth.startsWith('Bearer ') || !session) return error(401, 'unauthenticated', 'invalid session token')
    if (!session.valid) return error(401, 'unauthenticated', 'session token expired; log in again')
    const user = session.user
    if (method === 'POST' && path === '/api/v1/orders') return this.createOrder(user, header['Idempotency-Key'], body)
    if (method === 'GET' && path === '/api/v1/orders') {
      const mine = [...this.orders.values()].filter((o) => o.owner === user).reverse()
      return ok({ orders: mine.map(view), next_cursor: null })
    }
    const m = /^\/api\/v1\/orders\/([^/]+)(\/payment|\/cancel)?$/.exec(path)
    if (!m) return error(404, 'not_found', 'no such endpoint')
    const order = this.orders.get(m[1])
    if (!order || order.owner !== user) return error(404, 'order_not_found', 'order not found')
    if (method === 'GET' && !m[2]) return ok(this.read(order))
    if (method === 'POST' && m[2] === '/payment') return this.payment(order)
    if (method === 'POST' && m[2] === '/cancel') {
      if (order.status === 'PENDING') order.status = 'CLOSED'
      if (order.status !== 'CLOSED') return error(409, 'order_not_payable', `the order is ${order.status}; it cannot be cancelled`)
      return ok(view(order))
    }
    return error(404, 'not_found', 'no such endpoint')
  }

  private login(body: Record<string, unknown> | undefined): WxResponse {
    const code = body?.code
    if (typeof code !== 'string' || !code) return error(400, 'invalid_request', 'code missing')
    if (this.usedCodes.has(code)) return error(401, 'login_failed', 'code been used (40163)')
    this.usedCodes.add(code)
    const token = `token-${this.tokens.size + 1}`
    this.tokens.set(token, { user: 'alice', valid: true })
    return { statusCode: 201, data: { token, expires_in: 7200 }, header: {} }
  }

  private createOrder(user: string, key: string | undefined, body: Record<string, unknown> | undefined): WxResponse {
    const items = body?.items
    for (const obj of [body ?? {}, ...(Array.isArray(items) ? items : [])]) {
      const field = Object.keys(obj as object).find((k) => AMOUNT_FIELDS.includes(k))
      if (field) return error(400, 'amount_not_accepted', `amounts are computed by the server; remove \`${field}\` from the request`)
    }
    if (!Array.isArray(items) || items.length === 0) return error(400, 'invalid_request', 'invalid order')
    for (const i of items) {
      if (!PRODUCTS.some((p) => p.sku === i.sku)) return error(400, 'unknown_sku', `unknown sku "${i.sku}"`)
    }
    const canonical = JSON.stringify(items)
    if (key) {
      const before = this.idempotency.get(`${user} ${key}`)
      if (before && before.body !== canonical) return error(409, 'idempotency_key_reused', 'this Idempotency-Key was already used with a different request')
      if (before) return { statusCode: 201, data: view(this.must(before.id)), header: { 'idempotent-replayed': 'true' } }
    }
    const order = this.create(user, items)
    if (key) this.idempotency.set(`${user} ${key}`, { body: canonical, id: order.id })
    return { statusCode: 201, data: order, header: {} }
  }

  private create(owner: string, lines: { sku: string; quantity: number }[]): Order {
    const n = this.nextId++
    const id = `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`
    const items = lines.map((l) => {
      const p = PRODUCTS.find((x) => x.sku === l.sku)!
      return { sku: p.sku, name: p.name, quantity: l.quantity, unit_price_fen: p.price_fen }
    })
    const order: StoredOrder = {
      id,
      out_trade_no: `MP20261202010000${String(n).padStart(8, '0')}`,
      status: 'PENDING',
      amount_fen: items.reduce((s, i) => s + i.quantity * i.unit_price_fen, 0),
      items,
      created_at: new Date(this.now).toISOString(),
      expires_at: new Date(this.now + 15 * 60_000).toISOString(),
      paid_at: null,
      transaction_id: null,
      refunded_fen: 0,
      owner,
      prepay: undefined,
      paidAfterReads: undefined,
      payableUntil: this.now + 14 * 60_000,
    }
    this.orders.set(id, order)
    return view(order)
  }

  private read(order: StoredOrder): Order {
    if (order.paidAfterReads !== undefined) {
      if (order.paidAfterReads <= 0) {
        order.paidAfterReads = undefined
        this.confirmPayment(order.id)
      } else order.paidAfterReads--
    }
    return view(order)
  }

  private payment(order: StoredOrder): WxResponse {
    if (order.status !== 'PENDING') return error(409, 'order_not_payable', `the order is ${order.status}`)
    if (this.now > order.payableUntil) return error(409, 'order_not_payable', 'the order has expired or is about to')
    order.prepay ??= `wx${order.out_trade_no}`
    return ok({
      appId: 'wxd930ea5d5a258f4f',
      timeStamp: String(Math.floor(this.now / 1000)),
      nonceStr: `n${this.nextId++}`,
      package: `prepay_id=${order.prepay}`,
      signType: this.signType,
      paySign: this.signType === 'RSA' ? 'A'.repeat(344) : 'A'.repeat(64),
    })
  }

  private must(id: string): StoredOrder {
    const o = this.orders.get(id)
    if (!o) throw new Error(`no order ${id}`)
    return o
  }
}

function ok(data: unknown): WxResponse {
  return { statusCode: 200, data, header: {} }
}

function error(statusCode: number, code: string, message: string): WxResponse {
  return { statusCode, data: { code, message }, header: {} }
}

function view(o: StoredOrder | Order): Order {
  const { id, out_trade_no, status, amount_fen, items, created_at, expires_at, paid_at, transaction_id, refunded_fen } = o
  return { id, out_trade_no, status: status as OrderStatus, amount_fen, items, created_at, expires_at, paid_at, transaction_id, refunded_fen }
}

/** What the user does with the payment sheet. */
export type SheetAction =
  | 'pay' // pays; the notification arrives at once
  | { pay: 'late'; afterReads: number } // pays; the server learns it after that many reads
  | { pay: 'never-confirmed' } // the sheet says ok, the server never hears of a payment
  | 'cancel' // closes the sheet
  | { fail: string } // the sheet fails with this errMsg
  | 'hold' // keeps the sheet open until `release`

/** A fake `wx`: the fake server, login codes, storage, the payment sheet and navigation. */
export class FakeWx implements WxLike {
  readonly storage = new Map<string, unknown>()
  readonly sheets: WxPaymentOptions[] = []
  readonly navigations: { how: 'navigateTo' | 'redirectTo'; url: string }[] = []
  loginFails = false
  private readonly userDoes: SheetAction[] = []
  private codes = 0

  constructor(readonly server: FakeServer) {}

  /** What the user does the next time(s) the sheet opens, in order. */
  user(...actions: SheetAction[]): void {
    this.userDoes.push(...actions)
  }

  request(options: WxRequestOptions): void {
    this.server.handle(options)
  }

  login(options: { success(res: { code: string }): void; fail(err: { errMsg: string }): void }): void {
    setTimeout(() => {
      if (this.loginFails) options.fail({ errMsg: 'login:fail network' })
      else options.success({ code: `code-${++this.codes}` })
    }, 0)
  }

  /** The sheet held open by 'hold', if any. */
  private held: WxPaymentOptions | undefined

  /** The user finally does `action` with the sheet held open. */
  release(action: Exclude<SheetAction, 'hold'>): void {
    const options = this.held
    if (!options) throw new Error('no payment sheet is open')
    this.held = undefined
    this.act(options, action)
  }

  requestPayment(options: WxPaymentOptions): void {
    this.sheets.push(options)
    const action = this.userDoes.shift()
    if (action === undefined) throw new Error('the test did not say what the user does with the payment sheet')
    if (action === 'hold') this.held = options
    else this.act(options, action)
  }

  private act(options: WxPaymentOptions, action: Exclude<SheetAction, 'hold'>): void {
    const order = [...this.server.orders.values()].find((o) => options.package === `prepay_id=${o.prepay}`)
    setTimeout(() => {
      if (action === 'cancel') options.fail({ errMsg: 'requestPayment:fail cancel' })
      else if (typeof action === 'object' && 'fail' in action) options.fail({ errMsg: action.fail })
      else {
        if (!order) throw new Error(`no order has prepay ${options.package}`)
        if (action === 'pay') this.server.confirmPayment(order.id)
        else if (action.pay === 'late') this.server.confirmAfterReads(order.id, action.afterReads)
        options.success({ errMsg: 'requestPayment:ok' })
      }
    }, 0)
  }

  getStorageSync(key: string): unknown {
    return this.storage.has(key) ? this.storage.get(key) : ''
  }

  setStorageSync(key: string, value: unknown): void {
    this.storage.set(key, JSON.parse(JSON.stringify(value)))
  }

  removeStorageSync(key: string): void {
    this.storage.delete(key)
  }

  navigateTo(options: { url: string }): void {
    this.navigations.push({ how: 'navigateTo', url: options.url })
  }

  redirectTo(options: { url: string }): void {
    this.navigations.push({ how: 'redirectTo', url: options.url })
  }
}

/** Waits until `check` holds, polling every few ms, failing after `ms` with `what`. */
export async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 2))
  }
}
