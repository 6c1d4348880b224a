import type { Lang, Minipay } from './api/minipay'

/** What the App holds for every page: the one Minipay client and the user's language. */
export interface ShopApp {
  minipay: Minipay
  lang: Lang
}

/** The App's shared state. */
export function shop(): ShopApp {
  return getApp<ShopApp>()
}

/** Fen as yuan, for display only (the server computes every amount). */
export function yuan(fen: number): string {
  const whole = Math.floor(fen / 100)
  const cents = String(fen % 100).padStart(2, '0')
  return `¥${whole}.${cents}`
}
