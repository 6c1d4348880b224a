/**
 * Loading a page or component of the Mini Program with miniprogram-simulate (the WeChat
 * team's tool: the official WXML compiler, j-component for the component system), with a
 * fake `wx` and the App's state that pages read through `getApp()`.
 */
import * as path from 'path'
import * as simulate from 'miniprogram-simulate'

import { Minipay } from '../../miniprogram/api/minipay'
import type { Lang } from '../../miniprogram/api/minipay'
import type { ShopApp } from '../../miniprogram/shop'
import { FakeServer, FakeWx } from './fake'

/** The compiled Mini Program (build/miniprogram), .wxml/.wxss/.json beside each .js. */
export const ROOT = path.resolve(__dirname, '../../miniprogram')

export type Rendered = simulate.RootNode

export interface Shop {
  server: FakeServer
  wx: FakeWx
  app: ShopApp
}

/**
 * A fake Minipay, a fake `wx` and the App's client over them, with fast retries and polls.
 * The poll's timeout is long unless a test wants to see it run out.
 */
export function fakeShop(lang: Lang = 'zh', pollTimeoutMs = 10_000): Shop {
  const server = new FakeServer()
  const wx = new FakeWx(server)
  const minipay = new Minipay({
    wx,
    baseUrl: 'https://shop.test',
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
    poll: { firstDelayMs: 1, factor: 2, maxDelayMs: 4, timeoutMs: pollTimeoutMs },
  })
  return { server, wx, app: { minipay, lang } }
}

/**
 * Loads `pages/<name>/index` (or any path under the Mini Program) afresh, renders it and
 * attaches it. Modules are reset first, so each load runs the page's `Component()` again.
 */
export function load(relative: string, shop: Shop, properties?: Record<string, unknown>): Rendered {
  jest.resetModules()
  const g = globalThis as unknown as { wx: unknown; getApp: () => ShopApp }
  g.wx = shop.wx
  g.getApp = () => shop.app
  const id = simulate.load(path.join(ROOT, relative), { rootPath: ROOT })
  const rendered = simulate.render(id, properties)
  rendered.attach(document.createElement('parent-wrapper'))
  return rendered
}

/** The text of the first node matching `selector`, whitespace collapsed ('' if none). */
export function text(root: Rendered, selector: string): string {
  const node = root.querySelector(selector)
  return node ? (node.dom as Element).textContent!.replace(/\s+/g, ' ').trim() : ''
}

/** The texts of every node matching `selector`. */
export function texts(root: Rendered, selector: string): string[] {
  return root.querySelectorAll(selector).map((n) => (n.dom as Element).textContent!.replace(/\s+/g, ' ').trim())
}

/**
 * Taps the first node matching `selector`; resolves once the event was delivered (the
 * simulator delivers it in a microtask, which has run before the next macrotask).
 */
export async function tap(root: Rendered, selector: string): Promise<void> {
  const node = root.querySelector(selector)
  if (!node) throw new Error(`nothing matches ${selector}`)
  node.dispatchEvent('tap')
  await new Promise((resolve) => setTimeout(resolve, 0))
}

export { simulate }
