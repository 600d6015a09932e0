// Starts Debian's Chromium (playwright-core): a single-page app on another origin sets up a second factor, then signs in
// through the challenge; cookies arrive only once the code is verified, and fresh authentication is asked for and given.
/// <reference lib="dom" />
import type { Page } from 'playwright-core'
import t from 'tap'
import { totpCode } from '../../src/services/mfa/totp.js'
import { buildTestApp } from '../helpers/app.js'
import { fetchInPage, launchChromium, servePage, withChromium } from '../helpers/browser.js'
import { freePort } from '../helpers/net.js'
import { newAccount, proveAddress } from '../helpers/users.js'

async function browserSuite (): Promise<void> {
  const [apiPort, appPort] = [await freePort(), await freePort()]
  const api = `http://localhost:${apiPort}`
  const appOrigin = `http://localhost:${appPort}`
  const { app, prisma, clock, config } = await buildTestApp(t, { env: { PUBLIC_URL: api, CORS_ORIGINS: appOrigin, COOKIE_SECURE: 'true' } })
  await app.listen({ host: 'localhost', port: apiPort })

  await servePage(appPort, '<!doctype html><title>app</title>')

  const browser = await launchChromium()
  const context = await browser.newContext()
  // The session's: the device cookie (docs/security.md, "Sign-in notices", checked in browser.test.ts) outlives them.
  const apiCookies = async () => (await context.cookies([api, `${api}/auth/refresh`])).filter(cookie => cookie.name !== '__Host-auth_device')

  /** The app's own JavaScript calling the API: the status and the body parsed. */
  async function call (page: Page, method: string, path: string, body?: unknown): Promise<{ status: number, body: Record<string, unknown> | null }> {
    const { status, json } = await fetchInPage(page, method, `${api}${path}`, body)
    return { status, body: json }
  }

  t.test('set up TOTP, then login → challenge (no cookie) → verify → cookies; a stale session reauthenticates with a code', async t => {
    const page = await context.newPage()
    await page.goto(appOrigin)
    const account = newAccount()
    const registered = await call(page, 'POST', '/auth/register', account)
    t.equal(registered.status, 201)
    await proveAddress(prisma, (registered.body?.user as { id: string }).id)
    t.equal((await call(page, 'POST', '/auth/login', { email: account.email, password: account.password })).status, 200)

    const enrolment = await call(page, 'POST', '/auth/mfa/totp', { currentPassword: account.password })
    t.equal(enrolment.status, 200)
    const secret = enrolment.body?.secret as string
    const confirmed = await call(page, 'POST', '/auth/mfa/totp/confirm', { code: totpCode(secret, clock.now()) })
    t.equal(confirmed.status, 200)
    t.equal((confirmed.body?.recoveryCodes as string[]).length, 10)
    t.equal((await call(page, 'POST', '/auth/logout')).status, 204)
    t.same(await apiCookies(), [])

    const challenge = await call(page, 'POST', '/auth/login', { email: account.email, password: account.password })
    t.equal(challenge.status, 200)
    t.match(challenge.body, { mfaRequired: true, mfaToken: String, methods: ['totp', 'recovery_code'], expiresIn: 300 })
    t.same(await apiCookies(), [], 'no cookie before the second factor')
    t.equal((await call(page, 'GET', '/users/me')).status, 401)

    const wrong = await call(page, 'POST', '/auth/mfa/verify', { mfaToken: challenge.body?.mfaToken, code: '000000' })
    t.same([wrong.status, wrong.body?.code], [401, 'MFA_CODE_INVALID'])
    clock.advance(30)
    const verified = await call(page, 'POST', '/auth/mfa/verify', { mfaToken: challenge.body?.mfaToken, code: totpCode(secret, clock.now()) })
    t.equal(verified.status, 200)
    t.same(Object.keys(verified.body ?? {}).sort(), ['expiresIn', 'sessionId', 'user'], 'the answer of a browser login: no token')
    const cookies = await apiCookies()
    t.same(cookies.map(c => c.name).sort(), ['__Host-access_token', '__Host-refresh_token'])
    t.ok(cookies.every(c => c.httpOnly && c.secure))
    t.match((await call(page, 'GET', '/users/me')).body, { email: account.email, mfa: { totp: true, recoveryCodesLeft: 10 } })
    t.match((await call(page, 'GET', '/auth/session')).body, { amr: ['pwd', 'otp', 'mfa'], auth_time: Number })

    clock.advance(config.REAUTH_MAX_AGE_SECONDS + 1)
    const stale = await call(page, 'POST', '/auth/logout-all')
    t.same(stale, {
      status: 403,
      body: { statusCode: 403, code: 'REAUTHENTICATION_REQUIRED', error: 'Forbidden', message: 'Confirm it is you first: POST /auth/reauthenticate with one of the methods listed', methods: ['totp', 'recovery_code'] }
    })
    t.equal((await apiCookies()).length, 2, 'the refusal leaves the session')
    const renewed = await call(page, 'POST', '/auth/reauthenticate', { code: totpCode(secret, clock.now()) })
    t.same(renewed, { status: 200, body: { expiresIn: config.ACCESS_TOKEN_TTL_SECONDS } }, 'no token in the body')
    t.equal((await call(page, 'POST', '/auth/logout-all')).status, 204, 'fresh again, with the access cookie it set')
    t.same(await apiCookies(), [], 'and signed out everywhere')
    await page.close()
  })
}

await withChromium(browserSuite)
