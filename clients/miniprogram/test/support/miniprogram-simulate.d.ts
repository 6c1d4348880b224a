// The part of miniprogram-simulate's API these tests use. Its own typings pull in an older
// miniprogram-api-typings (3.x, through j-component) whose globals clash with the 5.x ones
// the Mini Program is checked against, so test/tsconfig.json maps the module here.

/** A node of the rendered tree (a component, or a built-in like view or button). */
export interface Node {
  readonly dom: Element | undefined
  readonly data: Record<string, any>
  readonly instance: Record<string, any>
  querySelector(selector: string): Node | undefined
  querySelectorAll(selector: string): Node[]
  dispatchEvent(eventName: string, options?: Record<string, unknown>): void
  addEventListener(eventName: string, handler: (event: { detail: any }) => void): void
  setData(data: Record<string, unknown>, callback?: () => void): void
  triggerLifeTime(lifeTime: string, args?: unknown): void
  triggerPageLifeTime(lifeTime: string, args?: unknown): void
}

/** A rendered component, to attach to a DOM node. */
export interface RootNode extends Node {
  attach(parent: Element): void
  detach(): void
}

/** Registers the component at `componentPath` (no extension) and returns its id. */
export function load(componentPath: string, options?: { compiler?: 'official' | 'simulate'; rootPath?: string }): string

/** Creates an instance of a loaded component. */
export function render(id: string, properties?: Record<string, unknown>): RootNode

export function sleep(ms: number): Promise<void>
