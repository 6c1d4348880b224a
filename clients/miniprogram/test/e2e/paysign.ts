/**
 * The check WeChat makes when `wx.requestPayment` is called: paySign is the v2 signature
 * (wechatpay-protocol.md §2.2 and §2.6) over appId, nonceStr, package, signType and
 * timeStamp, with the merchant's API key and the Mini Program's own AppID.
 */
import { createHash, createHmac } from 'crypto'

export interface PaySignFields {
  appId: string
  timeStamp: string
  nonceStr: string
  package: string
  signType: string
}

export function paySign(fields: PaySignFields, apiKey: string): string {
  const { appId, nonceStr, package: pkg, signType, timeStamp } = fields
  const pairs: [string, string][] = [
    ['appId', appId],
    ['nonceStr', nonceStr],
    ['package', pkg],
    ['signType', signType],
    ['timeStamp', timeStamp],
  ]
  const stringA = pairs
    .filter(([, v]) => v !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&')
  const temp = `${stringA}&key=${apiKey}`
  if (signType === 'HMAC-SHA256') return createHmac('sha256', apiKey).update(temp, 'utf8').digest('hex').toUpperCase()
  if (signType === 'MD5') return createHash('md5').update(temp, 'utf8').digest('hex').toUpperCase()
  throw new Error(`unknown signType ${signType}`)
}
