/**
 * Minipay's client for a WeChat Mini Program shop: one file, no imports, no globals. Copy it
 * into your Mini Program and give it `wx` and the gateway's base URL:
 *
 *     const minipay = new Minipay({ wx, baseUrl: 'https://shop.example.com' })
 *     const { order } = await minipay.createOrder([{ sku: 'TEA-JASMINE', quantity: 2 }], key)
 *     const outcome = await minipay.pay(order.id)   // prepay, wx.requestPayment, poll
 *
 * What it does for you:
 * - the session: `wx.login` → `POST /api/v1/sessions`, the token kept in storage, a 401 on
 *   any call answered by logging in again once and repeating that call once;
 * - retries of what may pass on another try (no answer, the gateway or WeChat Pay
 *   unavailable, a transient failure of the server; never a 4xx or WeChat's refusal), with
 *   capped exponential backoff that honours `Retry-After`; a new order always carries an
 *   `Idempotency-Key`, so neither a retry nor a retried tap creates two orders;
 * - the payment: the `wx.requestPayment` object from the server passed as is, then polling
 *   `GET /api/v1/orders/{id}` with backoff until PAID, CLOSED or a timeout. The sheet's
 *   `requestPayment:ok` is never taken as proof of payment: only the server says PAID. A
 *   payment the server has not confirmed is "confirming", not "failed": whether the poll ran
 *   out or a query failed for good (a 401 after logging in again, a 404, a 429, an unreadable
 *   answer), once the sheet said paid `pay` never rejects and never offers to pay again;
 * - every error code mapped to a message for the user, in Chinese and English (`messageFor`).
 *
 * It never sends an amount: the server prices every order from its own price list, so a
 * modified client cannot pay 1 fen for a 45 yuan cup (an amount in the body is refused with
 * `amount_not_accepted`). Prices shown to the user come from `GET /api/v1/products`, and what
 * is charged is the order's `amount_fen` as the server computed it.
 */

// ---------------------------------------------------------------------------------------
// The part of `wx` this module uses. The real `wx` fits it; so does a test double.

/** What `wx.request` hands to `success`. */
export interface WxResponse {
  statusCode: number
  data: unknown
  header: Record<string, unknown>
}

/** What `wx.*` hands to `fail`. */
export interface WxFail {
  errMsg: string
}

/** The options of `wx.request` this module sends. */
export interface WxRequestOptions {
  url: string
  method: 'GET' | 'POST'
  data?: Record<string, unknown>
  header: Record<string, string>
  timeout: number
  dataType: 'json'
  success(res: WxResponse): void
  fail(err: WxFail): void
}

/** The options of `wx.requestPayment`. */
export interface WxPaymentOptions {
  timeStamp: string
  nonceStr: string
  package: string
  signType: SignType
  paySign: string
  success(res: WxFail): void
  fail(err: WxFail): void
}

/** The `wx` APIs Minipay needs (the real `wx` is one). */
export interface WxLike {
  request(options: WxRequestOptions): unknown
  login(options: { timeout?: number; success(res: { code: string }): void; fail(err: WxFail): void }): unknown
  requestPayment(options: WxPaymentOptions): unknown
  getStorageSync(key: string): unknown
  setStorageSync(key: string, value: unknown): unknown
  removeStorageSync(key: string): unknown
}

// ---------------------------------------------------------------------------------------
// The API's shapes (order-svc's `/api/v1`).

/** Where an order stands. */
export type OrderStatus =
  | 'PENDING'
  | 'PAID'
  | 'CLOSED'
  | 'REFUNDING'
  | 'PARTIALLY_REFUNDED'
  | 'REFUNDED'
  | 'REVIEW'

/** A product of the price list. */
export interface Product {
  sku: string
  name: string
  price_fen: number
}

/** One line of an order, priced by the server. */
export interface OrderLine {
  sku: string
  name: string
  quantity: number
  unit_price_fen: number
}

/** An order as the server sees it. */
export interface Order {
  id: string
  out_trade_no: string
  status: OrderStatus
  amount_fen: number
  items: OrderLine[]
  created_at: string
  expires_at: string
  paid_at: string | null
  transaction_id: string | null
  /** Given back to the payer so far, in fen (WeChat confirmed). */
  refunded_fen: number
}

/** What the client asks for: a sku and a quantity, never a price. */
export interface CartLine {
  sku: string
  quantity: number
}

/** How `paySign` is signed: `MD5` or `HMAC-SHA256` (WeChat Pay API v2), `RSA` (API v3). */
export type SignType = 'MD5' | 'HMAC-SHA256' | 'RSA'

/** The object `POST /api/v1/orders/{id}/payment` answers, for `wx.requestPayment`. */
export interface PaymentParams {
  appId?: string
  timeStamp: string
  nonceStr: string
  package: string
  signType: SignType
  paySign: string
}

// ---------------------------------------------------------------------------------------
// Errors and their messages.

/** The language of user-facing messages. */
export type Lang = 'zh' | 'en'

/**
 * Every code a user can meet: the server's error codes (`{"code", "message"}` bodies) and
 * the client's own (network, the payment sheet, the poll).
 */
export const MESSAGES = messages({
  // The server's codes.
  invalid_request: ['请求有误，请刷新后重试', 'Something was wrong with the request; refresh and try again'],
  invalid_json: ['请求有误，请刷新后重试', 'Something was wrong with the request; refresh and try again'],
  body_too_large: ['订单内容过多，请减少商品后重试', 'The order is too large; remove some items and try again'],
  not_found: ['服务地址有误，请联系商家', 'This service is not available here; contact the shop'],
  amount_not_accepted: ['价格由商家计算，请更新小程序后重试', 'Prices are set by the shop; update the Mini Program and try again'],
  unknown_sku: ['商品已下架，请刷新商品列表', 'A product is no longer on sale; refresh the list'],
  unauthenticated: ['登录已过期，请重新进入小程序', 'Your session has expired; reopen the Mini Program'],
  login_failed: ['微信登录失败，请重试', 'WeChat login failed; please try again'],
  rate_limited: ['操作太频繁，请稍后再试', 'Too many attempts; wait a moment and try again'],
  order_not_found: ['订单不存在', 'Order not found'],
  idempotency_key_reused: ['订单已提交，请勿重复下单', 'This order was already placed'],
  order_not_payable: ['订单已支付、已关闭或即将过期，无法支付', 'This order can no longer be paid: it is paid, closed or about to expire'],
  // The admin API's (operators'), listed so that every code of order-svc has words.
  refund_exceeds_paid: ['退款金额超过可退金额', 'The refund is more than what is left to refund'],
  order_not_refundable: ['订单未支付，无法退款', 'The order is not paid; it cannot be refunded'],
  dead_letter_not_found: ['找不到该死信消息', 'No such dead letter'],
  resolution_not_allowed: ['该处理方式不适用于此订单', 'This resolution does not apply to the order'],
  reconciliation_not_found: ['该日尚未对账', 'That day was never reconciled'],
  reconciliation_running: ['该日正在对账，请稍后再试', 'That day is being reconciled right now; try again shortly'],
  broker_unavailable: ['消息服务暂时不可用，请稍后再试', 'The message broker is unavailable; try again shortly'],
  payment_unavailable: ['微信支付暂时不可用，请稍后重试', 'WeChat Pay is unavailable right now; try again shortly'],
  payment_refused: ['微信支付拒绝了本次支付，请联系商家', 'WeChat Pay refused this payment; contact the shop'],
  internal: ['系统繁忙，请稍后重试', 'Something went wrong on our side; try again later'],
  // The client's codes.
  network_error: ['网络连接失败，请检查网络后重试', 'No connection; check your network and try again'],
  service_unavailable: ['服务暂时不可用，请稍后重试', 'The service is unavailable right now; try again shortly'],
  bad_response: ['服务返回异常，请稍后重试', 'Unexpected answer from the server; try again later'],
  login_unavailable: ['无法获取微信登录信息，请重试', 'Could not get a WeChat login; please try again'],
  payment_cancelled: ['已取消支付，订单仍可支付', 'Payment cancelled; the order can still be paid'],
  payment_failed: ['支付未完成，请重试', 'The payment did not go through; please try again'],
  payment_confirming: ['支付成功，正在确认…', 'Paid, confirming…'],
  payment_pending: ['尚未收到支付结果', 'No payment has been received yet'],
  paid: ['支付成功', 'Payment successful'],
  order_closed: ['订单已关闭', 'This order is closed'],
  order_expired: ['订单已过期，请重新下单', 'This order has expired; please place a new one'],
  order_review: ['支付结果核对中，如有疑问请联系商家', 'Your payment is being checked; contact the shop if in doubt'],
})

/** Keeps the table's keys as a type while checking every entry is a [zh, en] pair. */
function messages<T extends Record<string, readonly [string, string]>>(table: T): T {
  return table
}

/** A code `messageFor` knows. */
export type MessageCode = keyof typeof MESSAGES

/** A failure of a Minipay call: the server's code, or the client's own. */
export class MinipayError extends Error {
  /** A stable code (a key of `MESSAGES` for every code this version knows). */
  readonly code: string
  /** The HTTP status; 0 when no answer came. */
  readonly status: number
  /** How long the server asked to wait (`Retry-After`), in ms. */
  readonly retryAfterMs: number | undefined

  constructor(code: string, status: number, message: string, retryAfterMs?: number) {
    super(message)
    this.name = 'MinipayError'
    this.code = code
    this.status = status
    this.retryAfterMs = retryAfterMs
  }
}

/** Whether `e` is a `MinipayError` (also across copies of this module). */
export function isMinipayError(e: unknown): e is MinipayError {
  return e instanceof Error && e.name === 'MinipayError' && typeof (e as MinipayError).code === 'string'
}

/** The message for the user: for a code, or for any error (unknown codes fall back by kind). */
export function messageFor(codeOrError: string | unknown, lang: Lang = 'zh'): string {
  let code: string
  if (typeof codeOrError === 'string') code = codeOrError
  else if (isMinipayError(codeOrError)) code = codeOrError.code
  else code = 'internal'
  const pair = (MESSAGES as Record<string, readonly [string, string]>)[code] ?? MESSAGES.internal
  return lang === 'en' ? pair[1] : pair[0]
}

/** `zh` for a Chinese system language (`zh_CN`, `zh_TW`, ...), else `en`. */
export function langOf(systemLanguage: string | undefined): Lang {
  return systemLanguage && systemLanguage.toLowerCase().startsWith('zh') ? 'zh' : 'en'
}

// ---------------------------------------------------------------------------------------
// Policies.

/** Retries of a request that failed in a way that may pass on a second try. */
export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number
  /** Wait before the second try; doubled for each further one. */
  baseDelayMs: number
  /** Longest wait between tries (also caps `Retry-After`). */
  maxDelayMs: number
}

/** How the result of a payment is awaited. */
export interface PollPolicy {
  /** Wait before the second query (the first is immediate). */
  firstDelayMs: number
  /** Each wait is this many times the last. */
  factor: number
  /** Longest wait between two queries. */
  maxDelayMs: number
  /** Give up after this long: "confirming" if the user paid, else "pending". */
  timeoutMs: number
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 400, maxDelayMs: 4000 }
export const DEFAULT_POLL: PollPolicy = { firstDelayMs: 500, factor: 1.6, maxDelayMs: 5000, timeoutMs: 30000 }

/** Everything a shop sets. */
export interface MinipayConfig {
  /** `wx`, or anything with the same calls. */
  wx: WxLike
  /**
   * The gateway's base URL, e.g. `https://shop.example.com` (its host must be in the Mini
   * Program's "request legal domains").
   */
  baseUrl: string
  /** Storage key of the session. */
  storageKey?: string
  /** Longest wait for one request, in ms. */
  requestTimeoutMs?: number
  retry?: Partial<RetryPolicy>
  poll?: Partial<PollPolicy>
  /** For tests: how to wait and what time it is. */
  sleep?: (ms: number) => Promise<void>
  now?: () => number
}

// ---------------------------------------------------------------------------------------
// The outcome of paying.

/** Where a payment stands while `pay` runs. */
export type PayProgress =
  | { state: 'paying' }
  | { state: 'confirming'; attempt: number; networkFailures: number }

/** Options of `waitForResult`. */
export interface WaitOptions {
  /** Hears each query's number (from 1) and how many queries failed so far. */
  onAttempt?(attempt: number, networkFailures: number): void
  /** Polled between queries: true ends the wait (the page was left, say). */
  stop?(): boolean
}

/** Options of `pay`. */
export interface PayOptions {
  /** Hears where the payment stands. */
  onProgress?(progress: PayProgress): void
  /** As `WaitOptions.stop`, for the poll after the sheet. */
  stop?(): boolean
}

/** How a payment ended. */
export type PaymentOutcome =
  /** The server confirmed the payment. */
  | { kind: 'paid'; order: Order }
  /**
   * The sheet said paid, but the server has not confirmed it: not within the poll's timeout,
   * or a query failed in a way another query would not mend. `order` is the last one the poll
   * read, if any; `error` is that failure (for logs: the user sees "paid, confirming…").
   */
  | { kind: 'confirming'; order: Order | undefined; error?: MinipayError }
  /** The user closed the payment sheet: the order is still payable, with the same prepay. */
  | { kind: 'cancelled' }
  /** The sheet failed (`requestPayment:fail ...`); the order is still payable. */
  | { kind: 'failed'; errMsg: string }
  /** The order is closed (cancelled, or expired and closed). */
  | { kind: 'closed'; order: Order }
  /** The order is too close to its expiry to be paid. */
  | { kind: 'expired'; order: Order }
  /** A payment contradicted the order; the shop has to look at it. */
  | { kind: 'review'; order: Order }

/** What `waitForResult` found. */
export type PollOutcome =
  | { kind: 'paid' | 'closed' | 'review'; order: Order }
  /** Still PENDING at the timeout. */
  | { kind: 'pending'; order: Order | undefined }

/** The message code that goes with an outcome. */
export function outcomeMessage(outcome: PaymentOutcome | PollOutcome): MessageCode {
  switch (outcome.kind) {
    case 'paid':
      return 'paid'
    case 'confirming':
      return 'payment_confirming'
    case 'cancelled':
      return 'payment_cancelled'
    case 'failed':
      return 'payment_failed'
    case 'closed':
      return 'order_closed'
    case 'expired':
      return 'order_expired'
    case 'review':
      return 'order_review'
    case 'pending':
      return 'payment_pending'
  }
}

// ---------------------------------------------------------------------------------------
// The client.

const SESSION_MARGIN_MS = 60_000
/** The header that makes a create idempotent: the same key returns the same order. */
const IDEMPOTENCY_KEY = 'Idempotency-Key'

/** A session: the bearer token and when it expires (ms since the epoch). */
export interface Session {
  token: string
  expiresAt: number
}

interface Answer<T> {
  data: T
  header: Record<string, unknown>
}

interface CallOptions {
  body?: Record<string, unknown>
  header?: Record<string, string>
  /** Retry network failures and 5xx (default true: every call of this API is safe to repeat). */
  retry?: boolean
}

/** A key for `createOrder`: make one per checkout tap and keep it while that tap is retried. */
export function newIdempotencyKey(now: number = Date.now()): string {
  let random = ''
  while (random.length < 16) random += Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, '0')
  return `mp-${now.toString(36)}-${random.slice(0, 16)}`
}

function headerValue(header: Record<string, unknown> | undefined, name: string): string | undefined {
  const wanted = name.toLowerCase()
  const all = header ?? {}
  for (const key of Object.keys(all)) {
    if (key.toLowerCase() === wanted) {
      const v = all[key]
      return v === undefined || v === null ? undefined : String(v)
    }
  }
  return undefined
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isOrder(v: unknown): v is Order {
  return isObject(v) && typeof v.id === 'string' && typeof v.status === 'string' && typeof v.amount_fen === 'number'
}

/**
 * A failed answer as an error: the body's `code` if it has one, else one from the status.
 * The API's errors are flat, `{"code", "message"}`, and so is the gateway's 404 for a route it
 * does not expose (`not_found`: a wrong base URL); the same pair nested under `error` is read
 * too, as some proxies answer.
 */
function errorOf(res: WxResponse): MinipayError {
  let body = res.data
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body)
    } catch {
      // Not JSON: a proxy's page, for instance.
    }
  }
  if (isObject(body) && typeof body.code !== 'string' && isObject(body.error)) body = body.error
  const retryAfter = Number(headerValue(res.header, 'Retry-After'))
  const retryAfterMs = Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter * 1000 : undefined
  if (isObject(body) && typeof body.code === 'string') {
    const message = typeof body.message === 'string' ? body.message : body.code
    return new MinipayError(body.code, res.statusCode, message, retryAfterMs)
  }
  const s = res.statusCode
  const code =
    s === 401 ? 'unauthenticated'
    : s === 404 ? 'not_found'
    : s === 413 ? 'body_too_large'
    : s === 429 ? 'rate_limited'
    : s >= 500 ? 'service_unavailable'
    : 'bad_response'
  return new MinipayError(code, s, `HTTP ${s}`, retryAfterMs)
}

/** The outcome of an order that left PENDING. */
function settled(order: Order): PollOutcome {
  switch (order.status) {
    case 'PENDING':
      return { kind: 'pending', order }
    case 'CLOSED':
      return { kind: 'closed', order }
    case 'REVIEW':
      return { kind: 'review', order }
    default:
      // PAID, and the refund states that only a paid order reaches.
      return { kind: 'paid', order }
  }
}

/** After the sheet said paid, PENDING means "not confirmed yet", never "failed". */
function afterPayment(result: PollOutcome): PaymentOutcome {
  return result.kind === 'pending' ? { kind: 'confirming', order: result.order } : result
}

/** What the poll found, or the failure that ended it and the last order it read. */
type PollResult = PollOutcome | { kind: 'error'; error: unknown; order: Order | undefined }

/** Any failure as a `MinipayError` (a foreign one as `internal`). */
function asMinipayError(e: unknown): MinipayError {
  if (isMinipayError(e)) return e
  return new MinipayError('internal', 0, e instanceof Error ? e.message : String(e))
}

/** Failures that may pass on another try: no answer, the gateway or a service unavailable, a
 * transient failure of ours. `payment_refused` (WeChat said no) is final. */
const RETRYABLE = ['network_error', 'service_unavailable', 'payment_unavailable', 'internal']

function retryable(e: unknown): boolean {
  return isMinipayError(e) && (e.status === 0 || (e.status >= 500 && RETRYABLE.includes(e.code)))
}

/** Minipay's API for one Mini Program. */
export class Minipay {
  private readonly wx: WxLike
  private readonly baseUrl: string
  private readonly storageKey: string
  private readonly timeoutMs: number
  private readonly retryPolicy: RetryPolicy
  private readonly pollPolicy: PollPolicy
  private readonly sleep: (ms: number) => Promise<void>
  private readonly now: () => number
  private loggingIn: Promise<Session> | undefined

  constructor(config: MinipayConfig) {
    if (!/^https?:\/\/[^/]+/.test(config.baseUrl)) {
      throw new Error(`baseUrl must be the gateway's URL, like https://shop.example.com; got ${JSON.stringify(config.baseUrl)}`)
    }
    this.wx = config.wx
    this.baseUrl = config.baseUrl.replace(/\/+$/, '')
    this.storageKey = config.storageKey ?? 'minipay.session'
    this.timeoutMs = config.requestTimeoutMs ?? 10_000
    this.retryPolicy = { ...DEFAULT_RETRY, ...config.retry }
    this.pollPolicy = { ...DEFAULT_POLL, ...config.poll }
    this.sleep = config.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)))
    this.now = config.now ?? (() => Date.now())
  }

  // --- the session -----------------------------------------------------------------------

  /** Logs in now (`wx.login`, then `POST /api/v1/sessions`) and stores the session. */
  login(): Promise<Session> {
    if (!this.loggingIn) {
      this.loggingIn = this.loginOnce().finally(() => {
        this.loggingIn = undefined
      })
    }
    return this.loggingIn
  }

  /** Forgets the session (the next call logs in). */
  logout(): void {
    this.wx.removeStorageSync(this.storageKey)
  }

  /** The stored session, if any and not about to expire. */
  session(): Session | undefined {
    const s = this.wx.getStorageSync(this.storageKey)
    if (isObject(s) && typeof s.token === 'string' && typeof s.expiresAt === 'number' && s.expiresAt - SESSION_MARGIN_MS > this.now()) {
      return { token: s.token, expiresAt: s.expiresAt }
    }
    return undefined
  }

  private async loginOnce(): Promise<Session> {
    // A code is single use: each try of the exchange gets a fresh one.
    for (let attempt = 1; ; attempt++) {
      const code = await this.wxLogin()
      try {
        const { data } = await this.send<{ token: string; expires_in: number }>('POST', '/api/v1/sessions', {
          body: { code },
          retry: false,
        })
        if (!isObject(data) || typeof data.token !== 'string' || typeof data.expires_in !== 'number') {
          throw new MinipayError('bad_response', 201, 'the session answer has no token')
        }
        const session = { token: data.token, expiresAt: this.now() + data.expires_in * 1000 }
        this.wx.setStorageSync(this.storageKey, session)
        return session
      } catch (e) {
        if (attempt >= this.retryPolicy.attempts || !retryable(e)) throw e
        await this.sleep(this.backoff(attempt, e))
      }
    }
  }

  private wxLogin(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.wx.login({
        timeout: this.timeoutMs,
        success: (res) => {
          if (res && typeof res.code === 'string' && res.code) resolve(res.code)
          else reject(new MinipayError('login_unavailable', 0, 'wx.login gave no code'))
        },
        fail: (err) => reject(new MinipayError('login_unavailable', 0, err?.errMsg ?? 'wx.login failed')),
      })
    })
  }

  // --- the calls -------------------------------------------------------------------------

  /** The price list (no session needed). */
  async products(): Promise<Product[]> {
    const { data } = await this.send<{ products: Product[] }>('GET', '/api/v1/products', {})
    if (!isObject(data) || !Array.isArray(data.products)) throw new MinipayError('bad_response', 200, 'no products')
    return data.products
  }

  /**
   * Creates an order from skus and quantities; the server prices it. Pass the same
   * `idempotencyKey` when the user's tap is retried (after a network error, say): the server
   * then answers the order it already created (`replayed`) instead of a second one.
   */
  async createOrder(lines: CartLine[], idempotencyKey: string = newIdempotencyKey(this.now())): Promise<{ order: Order; replayed: boolean }> {
    // Only sku and quantity leave the client, whatever else the caller's objects carry.
    const items = lines.map((l) => ({ sku: String(l.sku), quantity: Number(l.quantity) }))
    const { data, header } = await this.authed<Order>('POST', '/api/v1/orders', {
      body: { items },
      header: { [IDEMPOTENCY_KEY]: idempotencyKey },
    })
    if (!isOrder(data)) throw new MinipayError('bad_response', 201, 'the answer is not an order')
    return { order: data, replayed: headerValue(header, 'Idempotent-Replayed') === 'true' }
  }

  /** One of the user's orders. */
  async order(id: string, options: { retry?: boolean } = {}): Promise<Order> {
    const { data } = await this.authed<Order>('GET', `/api/v1/orders/${encodeURIComponent(id)}`, options)
    if (!isOrder(data)) throw new MinipayError('bad_response', 200, 'the answer is not an order')
    return data
  }

  /** The user's orders, newest first. */
  async orders(limit = 20, cursor?: string): Promise<{ orders: Order[]; next_cursor: string | null }> {
    const query = `?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
    const { data } = await this.authed<{ orders: Order[]; next_cursor: string | null }>('GET', `/api/v1/orders${query}`, {})
    if (!isObject(data) || !Array.isArray(data.orders)) throw new MinipayError('bad_response', 200, 'no orders')
    return data
  }

  /** Cancels an unpaid order (it becomes CLOSED; 409 `order_not_payable` once paid). */
  async cancel(id: string): Promise<Order> {
    const { data } = await this.authed<Order>('POST', `/api/v1/orders/${encodeURIComponent(id)}/cancel`, {})
    if (!isOrder(data)) throw new MinipayError('bad_response', 200, 'the answer is not an order')
    return data
  }

  /** The `wx.requestPayment` object for an order (the server reuses the prepay while valid). */
  async prepay(id: string): Promise<PaymentParams> {
    const { data } = await this.authed<PaymentParams>('POST', `/api/v1/orders/${encodeURIComponent(id)}/payment`, {})
    if (
      !isObject(data) ||
      typeof data.timeStamp !== 'string' ||
      typeof data.nonceStr !== 'string' ||
      typeof data.package !== 'string' ||
      typeof data.paySign !== 'string' ||
      (data.signType !== 'MD5' && data.signType !== 'HMAC-SHA256' && data.signType !== 'RSA')
    ) {
      throw new MinipayError('bad_response', 200, 'the answer is not a wx.requestPayment object')
    }
    return data
  }

  // --- paying ----------------------------------------------------------------------------

  /**
   * Pays an order: prepay, the payment sheet, then the server's answer. Resolves with how it
   * ended; rejects only with a `MinipayError` for a call that failed before the sheet said
   * paid (show `messageFor(e)`). Once the sheet said paid it always resolves: a query of the
   * order that fails for good ends as `confirming` (the failure in its `error`), so the user
   * is never told the payment failed nor offered to pay again.
   */
  async pay(id: string, options: PayOptions = {}): Promise<PaymentOutcome> {
    const onProgress = options.onProgress ?? (() => {})
    onProgress({ state: 'paying' })
    let params: PaymentParams
    try {
      params = await this.prepay(id)
    } catch (e) {
      if (isMinipayError(e) && e.code === 'order_not_payable') return this.notPayable(id)
      throw e
    }
    const sheet = await this.sheet(params)
    if (sheet.ok) {
      const result = await this.poll(id, {
        onAttempt: (attempt, networkFailures) => onProgress({ state: 'confirming', attempt, networkFailures }),
        stop: options.stop,
      })
      if (result.kind === 'error') return { kind: 'confirming', order: result.order, error: asMinipayError(result.error) }
      return afterPayment(result)
    }
    if (sheet.cancelled) return { kind: 'cancelled' }
    // The sheet failed. It is not proof of anything either: ask the server once.
    try {
      const order = await this.order(id)
      if (order.status !== 'PENDING') return afterPayment(settled(order))
    } catch {
      // Keep the sheet's answer.
    }
    return { kind: 'failed', errMsg: sheet.errMsg }
  }

  /** Calls `wx.requestPayment` with the server's object as is. */
  sheet(params: PaymentParams): Promise<{ ok: boolean; cancelled: boolean; errMsg: string }> {
    return new Promise((resolve) => {
      this.wx.requestPayment({
        timeStamp: params.timeStamp,
        nonceStr: params.nonceStr,
        package: params.package,
        signType: params.signType,
        paySign: params.paySign,
        success: (res) => resolve({ ok: true, cancelled: false, errMsg: res?.errMsg ?? 'requestPayment:ok' }),
        fail: (err) => {
          const errMsg = err?.errMsg ?? 'requestPayment:fail'
          resolve({ ok: false, cancelled: /requestPayment:fail\s*cancel/.test(errMsg), errMsg })
        },
      })
    })
  }

  /**
   * Polls the order until it leaves PENDING or the poll policy's timeout: the first query at
   * once, then with growing waits. A failed query (network, 5xx) does not end the poll; a 401
   * logs in again once. Ends as `pending` at the timeout, or as soon as `stop()` is true.
   * Rejects with a failure another query would not mend (a second 401, a 404, a 429, an
   * unreadable answer): after the sheet said paid, show that as "paid, confirming…" (as `pay`
   * does), never as a failed payment.
   */
  async waitForResult(id: string, options: WaitOptions = {}): Promise<PollOutcome> {
    const result = await this.poll(id, options)
    if (result.kind === 'error') throw result.error
    return result
  }

  /** `waitForResult`'s loop; a failure that ends it comes back with the last order read. */
  private async poll(id: string, options: WaitOptions): Promise<PollResult> {
    const p = this.pollPolicy
    const onAttempt = options.onAttempt ?? (() => {})
    const stop = options.stop ?? (() => false)
    const deadline = this.now() + p.timeoutMs
    let delay = p.firstDelayMs
    let last: Order | undefined
    let networkFailures = 0
    try {
      for (let attempt = 1; ; attempt++) {
        onAttempt(attempt, networkFailures)
        try {
          last = await this.order(id, { retry: false })
          if (last.status !== 'PENDING') return settled(last)
        } catch (e) {
          if (!retryable(e)) throw e
          networkFailures++
        }
        const left = deadline - this.now()
        if (left <= 0 || stop()) return { kind: 'pending', order: last }
        await this.sleep(Math.min(delay, left))
        if (stop()) return { kind: 'pending', order: last }
        delay = Math.min(delay * p.factor, p.maxDelayMs)
      }
    } catch (error) {
      return { kind: 'error', error, order: last }
    }
  }

  /** A prepay refused with 409: say why from the order's status. */
  private async notPayable(id: string): Promise<PaymentOutcome> {
    const order = await this.order(id)
    return order.status === 'PENDING' ? { kind: 'expired', order } : afterPayment(settled(order))
  }

  // --- the transport ---------------------------------------------------------------------

  /** A call with the session; on 401 logs in again once and repeats the call once. */
  private async authed<T>(method: 'GET' | 'POST', path: string, options: CallOptions): Promise<Answer<T>> {
    const token = (this.session() ?? (await this.login())).token
    try {
      return await this.send<T>(method, path, { ...options, header: { ...options.header, Authorization: `Bearer ${token}` } })
    } catch (e) {
      if (!isMinipayError(e) || e.status !== 401) throw e
      // Another call may have logged in meanwhile; otherwise log in now.
      const current = this.session()
      const fresh = current && current.token !== token ? current : await this.login()
      return this.send<T>(method, path, { ...options, header: { ...options.header, Authorization: `Bearer ${fresh.token}` } })
    }
  }

  /** One call, retried per the retry policy when it failed in a retryable way. */
  private async send<T>(method: 'GET' | 'POST', path: string, options: CallOptions): Promise<Answer<T>> {
    const retry = options.retry ?? true
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once<T>(method, path, options)
      } catch (e) {
        if (!retry || attempt >= this.retryPolicy.attempts || !retryable(e)) throw e
        await this.sleep(this.backoff(attempt, e))
      }
    }
  }

  private backoff(attempt: number, e: unknown): number {
    const r = this.retryPolicy
    const exponential = r.baseDelayMs * 2 ** (attempt - 1)
    const asked = isMinipayError(e) && e.retryAfterMs !== undefined ? e.retryAfterMs : 0
    return Math.min(Math.max(exponential, asked), r.maxDelayMs)
  }

  private once<T>(method: 'GET' | 'POST', path: string, options: CallOptions): Promise<Answer<T>> {
    return new Promise((resolve, reject) => {
      const header: Record<string, string> = { ...options.header }
      if (options.body !== undefined) header['Content-Type'] = 'application/json'
      this.wx.request({
        url: this.baseUrl + path,
        method,
        data: options.body,
        header,
        timeout: this.timeoutMs,
        dataType: 'json',
        success: (res) => {
          if (res.statusCode >= 200 && res.statusCode < 300) {
            let data = res.data
            if (typeof data === 'string') {
              try {
                data = JSON.parse(data)
              } catch {
                reject(new MinipayError('bad_response', res.statusCode, 'the answer is not JSON'))
                return
              }
            }
            resolve({ data: data as T, header: res.header ?? {} })
          } else {
            reject(errorOf(res))
          }
        },
        fail: (err) => reject(new MinipayError('network_error', 0, err?.errMsg ?? 'request:fail')),
      })
    })
  }
}
