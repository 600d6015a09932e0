// Debian's Chromium for the browser tests, driven by playwright-core: never a browser downloaded by a tool.
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { chromium, type Browser, type Page } from 'playwright-core'
import t from 'tap'

const CHROMIUM = '/usr/bin/chromium'

/**
 * Headless Chromium, closed when the test file ends. Without the background-networking
 * flags it keeps trying Google's hosts, which a closed network refuses many at a time.
 */
export async function launchChromium (): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  return browser
}

/** Runs `suite` where Chromium is installed; CI installs it (.ci/run), so there its absence is an error. */
export async function withChromium (suite: () => Promise<void>): Promise<void> {
  if (existsSync(CHROMIUM)) {
    await suite()
  } else if (process.env.CI !== undefined) {
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium`)
  } else {
    t.plan(0, `${CHROMIUM} is not installed (apt-get install chromium): browser test skipped`)
  }
}

export interface PageResponse {
  status: number
  text: string
  /** The body parsed, when it is JSON; null when empty or not JSON. */
  json: Record<string, unknown> | null
  /** The headers the page may read (lower case): on another origin, the safelisted ones and those the answer exposes. */
  headers: Record<string, string>
}

/** fetch() from inside the page, with credentials, as the app's own JavaScript would. */
export async function fetchInPage (page: Page, method: string, url: string, body?: unknown): Promise<PageResponse> {
  const { status, text, headers } = await page.evaluate(async ({ method, url, body }) => {
    const init: RequestInit = { method, credentials: 'include' }
    if (body !== undefined) {
      init.headers = { 'content-type': 'application/json' }
      init.body = JSON.stringify(body)
    }
    const response = await fetch(url, init)
    const headers: Record<string, string> = {}
    response.headers.forEach((value, name) => { headers[name] = value })
    return { status: response.status, text: await response.text(), headers }
  }, { method, url, body })
  let json: Record<string, unknown> | null = null
  try {
    json = text === '' ? null : JSON.parse(text) as Record<string, unknown>
  } catch {}
  return { status, text, json, headers }
}

/** A file served beside the page, by its path (`/client.js`). */
export interface ServedFile {
  contentType: string
  body: string
}

/**
 * Serves `html` at every path of `http://host:port` (and each of `files` at its own path), as
 * the page of an app on another origin, until the test file ends.
 */
export async function servePage (port: number, html: string, { host = 'localhost', files = {} }: { host?: string, files?: Record<string, ServedFile> } = {}): Promise<Server> {
  const server = createServer((request, response) => {
    const file = files[request.url ?? '/'] ?? { contentType: 'text/html', body: html }
    response.setHeader('content-type', file.contentType)
    response.end(file.body)
  }).listen(port, host)
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  return server
}
