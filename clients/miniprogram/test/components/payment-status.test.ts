/**
 * The payment-status component: every state of the payment flow, in Chinese and English,
 * with the buttons the user gets in each, and the event a button sends.
 */
import { fakeShop, load, tap, text, texts } from '../support/simulate'
import type { Rendered } from '../support/simulate'

function status(properties: Record<string, unknown>): Rendered {
  return load('components/payment-status/index', fakeShop(), properties)
}

// [state, zh title, en title, buttons (zh), buttons (en)]
const STATES: [string, string, string, string[], string[]][] = [
  ['paying', '正在发起支付…', 'Opening WeChat Pay…', [], []],
  ['confirming', '支付成功，正在确认…', 'Paid, confirming…', [], []],
  ['unconfirmed', '支付成功，正在确认…', 'Paid, confirming…', ['刷新'], ['Refresh']],
  ['paid', '支付成功', 'Payment successful', ['返回商店'], ['Back to the shop']],
  ['cancelled', '已取消支付，订单仍可支付', 'Payment cancelled; the order can still be paid', ['继续支付'], ['Pay again']],
  ['failed', '支付未完成，请重试', 'The payment did not go through; please try again', ['继续支付'], ['Pay again']],
  ['closed', '订单已关闭', 'This order is closed', ['返回商店'], ['Back to the shop']],
  ['expired', '订单已过期，请重新下单', 'This order has expired; please place a new one', ['返回商店'], ['Back to the shop']],
  ['review', '支付结果核对中，如有疑问请联系商家', 'Your payment is being checked; contact the shop if in doubt', ['返回商店'], ['Back to the shop']],
  ['pending', '尚未收到支付结果', 'No payment has been received yet', ['刷新', '继续支付'], ['Refresh', 'Pay again']],
]

describe.each(STATES)('state %s', (state, zh, en, zhButtons, enButtons) => {
  test('in Chinese', () => {
    const c = status({ state, lang: 'zh' })
    expect(text(c, '.title')).toBe(zh)
    expect(texts(c, '.action')).toEqual(zhButtons)
  })

  test('in English', () => {
    const c = status({ state, lang: 'en' })
    expect(text(c, '.title')).toBe(en)
    expect(texts(c, '.action')).toEqual(enButtons)
  })
})

test('a spinner only while something is under way (paying, confirming)', () => {
  for (const [state] of STATES) {
    const busy = state === 'paying' || state === 'confirming'
    expect([state, status({ state }).querySelector('.spinner') !== undefined]).toEqual([state, busy])
  }
})

test('the error state shows the message it is given, with a retry button', () => {
  const c = status({ state: 'error', lang: 'en', detail: 'No connection; check your network and try again' })
  expect(text(c, '.title')).toBe('No connection; check your network and try again')
  expect(texts(c, '.action')).toEqual(['Pay again'])
})

test('"unconfirmed" tells the user not to pay twice', () => {
  expect(text(status({ state: 'unconfirmed', lang: 'zh' }), '.hint')).toBe('如已扣款，请稍后刷新查看，无需重复支付')
  expect(text(status({ state: 'unconfirmed', lang: 'en' }), '.hint')).toBe('If you were charged, refresh later; do not pay again')
})

test('a network drop while confirming shows that it keeps checking', () => {
  expect(text(status({ state: 'confirming', lang: 'zh', reconnecting: true }), '.hint')).toBe('网络不稳定，正在重试…')
  expect(text(status({ state: 'confirming', lang: 'en', reconnecting: false }), '.hint')).toBe('')
  // Once settled, the hint goes: a paid order is not "reconnecting".
  expect(text(status({ state: 'paid', lang: 'en', reconnecting: true }), '.hint')).toBe('')
})

test('a button sends an `action` event naming what the user chose', async () => {
  const c = status({ state: 'pending', lang: 'en' })
  const chosen: string[] = []
  c.addEventListener('action', (e) => chosen.push(e.detail.action))
  await tap(c, '.action-refresh')
  await tap(c, '.action-retry')
  expect(chosen).toEqual(['refresh', 'retry'])
})

test('a new state re-renders the title and buttons', () => {
  const c = status({ state: 'confirming', lang: 'en' })
  expect(texts(c, '.action')).toEqual([])
  c.setData({ state: 'cancelled' })
  expect(text(c, '.title')).toBe('Payment cancelled; the order can still be paid')
  expect(texts(c, '.action')).toEqual(['Pay again'])
})
