/**
 * The end-to-end test's `wx.requestPayment` checks paySign as WeChat does; the check itself
 * against the reference's test vector V2-PAYSIGN (wechatpay-protocol.md §2.6).
 */
import { paySign } from '../e2e/paysign'

const FIELDS = {
  appId: 'wxd678efh567hg6787',
  timeStamp: '1490840662',
  nonceStr: '5K8264ILTKCH16CQ2502SI8ZNMTM67VS',
  package: 'prepay_id=wx2017033010242291fcfe0db70013231072',
}
const KEY = 'qazwsxedcrfvtgbyhnujmikolp111111'

test('MD5', () => {
  expect(paySign({ ...FIELDS, signType: 'MD5' }, KEY)).toBe('22D9B4E54AB1950F51E0649E8810ACD6')
})

test('HMAC-SHA256', () => {
  expect(paySign({ ...FIELDS, signType: 'HMAC-SHA256' }, KEY)).toBe('FB9D1EFB5C509131BBFF729F88A99CA2DE9B724D06D3B3262832A53083862BC0')
})

test('another AppID gives another signature (WeChat refuses a payment signed for another Mini Program)', () => {
  expect(paySign({ ...FIELDS, appId: 'wxd930ea5d5a258f4f', signType: 'MD5' }, KEY)).not.toBe('22D9B4E54AB1950F51E0649E8810ACD6')
})
