// Starts Debian's Chromium (playwright-core): only a real browser shares cookies, Web Locks and BroadcastChannel
// between tabs. Four tabs of one app race refreshes after the access token expires; a revoked session and a
// refused token end the session in every tab, without a refresh loop.
/// <reference lib="dom" />
import { join } from 'node:path'
import { build } from 'esbuild'
import type { Page } from 'playwright-core'
import t from 'tap'
import type { AuthClient, SessionEndEvent } from '../../packages/client/src/index.js'
import { buildTestApp } from '../helpers/app.js'
import { launchChromium, servePage, withChromium } from '../helpers/browser.js'
import { freePort } from '../helpers/net.js'
import { newAccount } from '../helpers/users.js'
const TABS = 4
// The login's access token lives its whole 5 s, as long as its cookie once did: the first expiry shows
// that the browser still presents it. Later tokens are issued 2 s in the past by the service's clock,
// so they expire after 3 s of real life: shorter waits, still room for a round of calls.
const TTL_SECONDS = 5
const LATER_LIFE_MS = 3000

declare global {
  interface Window { auth: AuthClient, ended: SessionEndEvent[] }
}

async function browserSuite (): Promise<void> {
  const [apiPort, appPort] = [await freePort(), await freePort()]
  const api = `http://localhost:${apiPort}`
  const appOrigin = `http://localhost:${appPort}`
  const { app, prisma, clock } = await buildTestApp(t, {
    env: { PUBLIC_URL: api, CORS_ORIGINS: appOrigin, ACCESS_TOKEN_TTL_SECONDS: String(TTL_SECONDS), COOKIE_SECURE: 'true' }
  })
  await app.listen({ host: 'localhost', port: apiPort })

  // The app: the client library as an app's bundler would ship it, and a page that makes one client per tab.
  const bundle = await build({ entryPoints: [join(import.meta.dirname, '../../packages/client/src/index.ts')], bundle: true, format: 'esm', write: false })
  const script = bundle.outputFiles[0]?.text ?? ''
  const page = `<!doctype html><title>app</title><script type="module">
    import { createAuthClient } from '/client.js'
    window.ended = []
    window.auth = createAuthClient({ baseUrl: ${JSON.stringify(api)} })
    window.auth.onSessionEnd(event => { window.ended.push(event) })
  </script>`
  await servePage(appPort, page, { files: { '/client.js': { contentType: 'text/javascript', body: script } } })

  const browser = await launchChromium()
  const context = await browser.newContext()
  const refreshes: string[] = []
  const calls: string[] = []
  let refusals: Array<Promise<string>> = []
  context.on('request', request => {
    if (request.method() === 'OPTIONS') return
    const { pathname } = new URL(request.url())
    if (pathname === '/auth/refresh') refreshes.push(pathname)
    else calls.push(pathname)
  })
  context.on('response', response => {
    if (response.status() === 401) refusals.push(response.json().then((body: { code: string }) => body.code))
  })

  const tabs: Page[] = []
  for (let i = 0; i < TABS; i++) {
    const tab = await context.newPage()
    await tab.goto(appOrigin)
    await tab.waitForFunction(() => window.auth !== undefined)
    tabs.push(tab)
  }
  const [first, second] = tabs as [Page, Page]
  const endedIn = (tab: Page) => tab.evaluate(() => window.ended)

  /** Three calls at once in every tab; each tab answers with what failed. */
  const round = () => Promise.all(tabs.map(tab => tab.evaluate(async () => {
    const claims = window.auth.fetch('/auth/session').then(async response => { if (!response.ok) throw await response.json() })
    const results = await Promise.allSettled([window.auth.me(), window.auth.sessions(), claims])
    return results.map(result => result.status === 'fulfilled' ? 'ok' : String((result.reason as { code?: string }).code))
  })))
  const generation = async (email: string) =>
    (await prisma.session.findFirstOrThrow({ where: { user: { email } }, orderBy: { createdAt: 'desc' } })).generation

  const account = newAccount()
  await first.evaluate(async account => { await window.auth.register(account) }, account)

  t.test('tabs racing after each expiry: every call succeeds, one rotation per expiry, nobody logged out', async t => {
    await first.evaluate(async ({ email, password }) => { await window.auth.login({ email, password }) }, account)
    t.same(await round(), Array(TABS).fill(['ok', 'ok', 'ok']), 'every tab is signed in through the shared cookies')
    let expiresAt = Date.now() + TTL_SECONDS * 1000
    clock.advance(LATER_LIFE_MS / 1000 - TTL_SECONDS)
    for (let expiry = 1; expiry <= 2; expiry++) {
      await new Promise(resolve => setTimeout(resolve, expiresAt + 300 - Date.now()))
      refreshes.length = 0
      refusals = []
      t.same(await round(), Array(TABS).fill(['ok', 'ok', 'ok']), `expiry ${expiry}: every call succeeds`)
      expiresAt = Date.now() + LATER_LIFE_MS
      t.same([...new Set(await Promise.all(refusals))], ['AUTH_TOKEN_EXPIRED'], `expiry ${expiry}: the expired token was presented, and refused as expired`)
      t.equal(refreshes.length, 1, `expiry ${expiry}: one refresh among ${TABS * 3} calls in ${TABS} tabs`)
      t.equal(await generation(account.email), expiry, `expiry ${expiry}: one rotation`)
    }
    for (const tab of tabs) t.same(await endedIn(tab), [], 'nobody is logged out')
    t.equal(await first.evaluate(() => document.cookie), '', 'and no script ever sees a token')
  })

  t.test('a session revoked from another device ends in every tab, with no refresh', async t => {
    const mine = await second.evaluate(async () => (await window.auth.sessions()).items.find(item => item.current)?.id)
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } })
    const revoke = await app.inject({ method: 'DELETE', url: `/auth/sessions/${String(mine)}`, headers: { authorization: `Bearer ${login.json().accessToken as string}` } })
    t.equal(revoke.statusCode, 204)
    refreshes.length = 0
    calls.length = 0
    t.equal(await second.evaluate(() => window.auth.me().then(() => 'ok', (error: { code: string }) => error.code)), 'AUTH_SESSION_REVOKED')
    // BroadcastChannel reaches each tab in its own time.
    for (const tab of tabs) await tab.waitForFunction(() => window.ended.length > 0)
    for (const tab of tabs) t.same(await endedIn(tab), [{ reason: 'refused', code: 'AUTH_SESSION_REVOKED' }], 'told once in every tab')
    t.same(refreshes, [], 'no refresh')
    t.same(calls, ['/users/me'], 'no retry')
  })

  t.test('a 401 with another code never loops: a refused token ends the session once', async t => {
    await first.evaluate(async ({ email, password }) => { await window.auth.login({ email, password }) }, account)
    t.same(await round(), Array(TABS).fill(['ok', 'ok', 'ok']), 'signed in again in every tab')
    // What no page script can do (the cookie is HttpOnly): a token the service refuses for another reason than its age.
    const cdp = await context.newCDPSession(first)
    await cdp.send('Network.setCookie', { name: '__Host-access_token', value: 'not.a.token', url: `${api}/`, path: '/', httpOnly: true, secure: true, sameSite: 'Lax' })
    refreshes.length = 0
    calls.length = 0
    const failures = await round()
    t.same(failures, Array(TABS).fill(['AUTH_TOKEN_INVALID', 'AUTH_TOKEN_INVALID', 'AUTH_TOKEN_INVALID']))
    t.same(refreshes, [], 'no refresh')
    t.equal(calls.length, TABS * 3, 'no retry')
    for (const tab of tabs) await tab.waitForFunction(() => window.ended.length > 1)
    for (const tab of tabs) t.same((await endedIn(tab)).at(-1), { reason: 'refused', code: 'AUTH_TOKEN_INVALID' })
    t.equal((await endedIn(first)).length, 2, 'told once for this session, however many calls failed')
  })
}

await withChromium(browserSuite)
