/**
 * `wx` for Node, against a real Minipay: `wx.request` is an HTTPS request to the gateway
 * (trusting the test CA), `wx.login` asks the WeChat Pay simulator for a login code as WeChat
 * would give one, and `wx.requestPayment` checks paySign as WeChat does, then has the
 * simulator's user pay, fail, or the user close the sheet.
 */
import * as http from 'http'
import * as https from 'https'

import type { WxLike, WxPaymentOptions, WxRequestOptions } from '../../miniprogram/api/minipay'
import { paySign } from './paysign'

export interface Env {
  /** The gateway's https base URL (MINIPAY_API_URL). */
  apiUrl: string
  /** The simulator's control API base URL, http (MINIPAY_SIM_URL). */
  simUrl: string
  /** The PEM of the CA that signed the gateway's certificate (MINIPAY_CA_FILE's content). */
  ca: string
  caFile: string
  /** The Mini Program's AppID and the merchant's API key, for the paySign check. */
  appId: string
  apiKey: string
}

/** What the user does when the payment sheet opens. */
export type UserAction = 'pay' | 'cancel' | 'fail'

/** A request the adapter saw. */
export interface Sent {
  method: string
  path: string
  status: number | 'dropped' | 'error'
}

export class NodeWx implements WxLike {
  readonly sent: Sent[] = []
  readonly sheets: WxPaymentOptions[] = []
  logins = 0
  private readonly storage = new Map<string, unknown>()
  private readonly agent: https.Agent
  private readonly plans: { action: UserAction; outTradeNo: string }[] = []
  private readonly drops: { method: string; path: RegExp }[] = []

  constructor(
    private readonly env: Env,
    private readonly user: string,
  ) {
    this.agent = new https.Agent({ ca: env.ca, keepAlive: false })
  }

  /** What the user does the next time the sheet opens, for the order `outTradeNo`. */
  userWill(action: UserAction, outTradeNo: string): void {
    this.plans.push({ action, outTradeNo })
  }

  /** The next request matching `method path` fails as a dropped connection would. */
  dropNext(method: string, path: RegExp): void {
    this.drops.push({ method, path })
  }

  request(options: WxRequestOptions): void {
    const url = new URL(options.url)
    const entry: Sent = { method: options.method, path: url.pathname, status: 'error' }
    this.sent.push(entry)
    const d = this.drops.findIndex((x) => x.method === options.method && x.path.test(url.pathname))
    if (d >= 0) {
      this.drops.splice(d, 1)
      entry.status = 'dropped'
      setTimeout(() => options.fail({ errMsg: 'request:fail net::ERR_CONNECTION_RESET' }), 0)
      return
    }
    const body = options.data === undefined ? undefined : JSON.stringify(options.data)
    const headers: Record<string, string> = { ...options.header }
    if (body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(body))
    const req = https.request(url, { method: options.method, headers, agent: this.agent, timeout: options.timeout }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let data: unknown = text
        try {
          data = JSON.parse(text)
        } catch {
          // wx.request hands over the raw text when it is not JSON.
        }
        entry.status = res.statusCode ?? 0
        options.success({ statusCode: res.statusCode ?? 0, data, header: res.headers as Record<string, unknown> })
      })
      res.on('error', (e) => options.fail({ errMsg: `request:fail ${e.message}` }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', (e) => options.fail({ errMsg: `request:fail ${e.message}` }))
    req.end(body)
  }

  login(options: { success(res: { code: string }): void; fail(err: { errMsg: string }): void }): void {
    this.logins++
    simCall(this.env, 'POST', '/sim/v1/login-codes', { name: this.user })
      .then(({ status, body }) => {
        const code = (body as { code?: unknown }).code
        if (status === 201 && typeof code === 'string') options.success({ code })
        else options.fail({ errMsg: `login:fail simulator answered ${status} ${JSON.stringify(body)}` })
      })
      .catch((e: Error) => options.fail({ errMsg: `login:fail ${e.message}` }))
  }

  requestPayment(options: WxPaymentOptions): void {
    this.sheets.push(options)
    const plan = this.plans.shift()
    if (!plan) {
      setTimeout(() => options.fail({ errMsg: 'requestPayment:fail the test did not say what the user does' }), 0)
      return
    }
    const expected = paySign({ ...options, appId: this.env.appId }, this.env.apiKey)
    if (options.paySign !== expected) {
      setTimeout(() => options.fail({ errMsg: 'requestPayment:fail paySign does not verify (appId or key differs?)' }), 0)
      return
    }
    if (plan.action === 'cancel') {
      setTimeout(() => options.fail({ errMsg: 'requestPayment:fail cancel' }), 0)
      return
    }
    const path = `/sim/v1/orders/${encodeURIComponent(plan.outTradeNo)}`
    simCall(this.env, 'GET', path)
      .then(({ status, body }) => {
        const prepay = (body as { prepay_id?: unknown }).prepay_id
        if (status !== 200 || `prepay_id=${prepay}` !== options.package) {
          throw new Error(`the sheet's ${options.package} is not WeChat's prepay for ${plan.outTradeNo} (${status} ${JSON.stringify(body)})`)
        }
        return simCall(this.env, 'POST', `${path}/pay`, plan.action === 'fail' ? { result: 'PAYERROR' } : undefined)
      })
      .then(({ status, body }) => {
        if (status !== 200) throw new Error(`the simulator refused to pay: ${status} ${JSON.stringify(body)}`)
        if (plan.action === 'fail') options.fail({ errMsg: 'requestPayment:fail 支付失败' })
        else options.success({ errMsg: 'requestPayment:ok' })
      })
      .catch((e: Error) => options.fail({ errMsg: `requestPayment:fail ${e.message}` }))
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

  close(): void {
    this.agent.destroy()
  }
}

/** A JSON call to the simulator's control API. */
export function simCall(env: Env, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const req = http.request(
      new URL(path, env.simUrl),
      {
        method,
        headers: payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(payload)) },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let parsed: unknown = text
          try {
            parsed = JSON.parse(text)
          } catch {
            // keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed })
        })
      },
    )
    req.on('timeout', () => req.destroy(new Error(`the simulator at ${env.simUrl} did not answer in 10 s`)))
    req.on('error', reject)
    req.end(payload)
  })
}
