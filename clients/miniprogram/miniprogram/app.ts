import { Minipay, langOf } from './api/minipay'
import { MINIPAY_BASE_URL } from './config'
import type { ShopApp } from './shop'

function systemLanguage(): string | undefined {
  try {
    return wx.getAppBaseInfo().language
  } catch {
    return undefined
  }
}

App<ShopApp>({
  // One client for every page: one session, one login at a time.
  minipay: new Minipay({ wx, baseUrl: MINIPAY_BASE_URL }),
  lang: langOf(systemLanguage()),
})
