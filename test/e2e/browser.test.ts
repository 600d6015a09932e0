// A real browser (Debian's Chromium, driven by playwright-core) plays a single-page app on another origin.
/// <reference lib="dom" />
import type { Page } from 'playwright-core'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { fetchInPage, launchChromium, servePage, withChromium } from '../helpers/browser.js'
import { startMailServer } from '../helpers/mail.js'
import { freePort } from '../helpers/net.js'
import { newAccount } from '../helpers/users.js'

async function browserSuite (): Promise<void> {
  const [apiPort, appPort, evilPort] = [await freePort(), await freePort(), await freePort()]
  const api = `http://localhost:${apiPort}`
  const appOrigin = `http://localhost:${appPort}`
  // Same site as the API (cookies travel to it), but not an allowed origin.
  const evilOrigin = `http://localhost:${evilPort}`

  const mail = await startMailServer(t)
  const { app, prisma } = await buildTestApp(t, {
    env: { PUBLIC_URL: api, CORS_ORIGINS: appOrigin, ACCESS_TOKEN_TTL_SECONDS: '5', COOKIE_SECURE: 'true', RATE_LIMIT_VERIFY: '1/60', SMTP_URL: mail.url }
  })
  await app.listen({ host: 'localhost', port: apiPort })

  const html = '<!doctype html><title>app</title><form id="form" method="post" enctype="text/plain"></form>'
  await servePage(appPort, html)
  await servePage(evilPort, html)

  const browser = await launchChromium()
  const context = await browser.newContext()

  /** The app's own JavaScript calling the API: the status and the body as text. */
  async function call (page: Page, method: string, path: string, body?: unknown): Promise<{ status: number, body: string }> {
    const { status, text } = await fetchInPage(page, method, `${api}${path}`, body)
    return { status, body: text }
  }

  // The refresh cookie is scoped to /auth, so it shows only for URLs under that path.
  const allCookies = () => context.cookies([api, `${api}/auth/refresh`])
  // The session's: the device cookie (docs/security.md, "Sign-in notices") outlives them.
  const apiCookies = async () => (await allCookies()).filter(cookie => cookie.name !== '__Host-auth_device')

  const tokenPattern = /accessToken|refreshToken|eyJ[A-Za-z0-9_-]{10,}/

  t.test('register, log in, read, refresh after expiry, log out — JavaScript never sees a token', async t => {
    const page = await context.newPage()
    await page.goto(appOrigin)
    const account = newAccount()
    const seen: string[] = []
    const record = (response: { status: number, body: string }) => { seen.push(response.body); return response }

    t.equal(record(await call(page, 'POST', '/auth/register', account)).status, 201)
    const login = record(await call(page, 'POST', '/auth/login', { email: account.email, password: account.password }))
    t.equal(login.status, 200)
    t.same(Object.keys(JSON.parse(login.body)).sort(), ['expiresIn', 'sessionId', 'user'])
    const me = record(await call(page, 'GET', '/users/me'))
    t.equal(me.status, 200)
    t.equal(JSON.parse(me.body).email, account.email)

    const cookies = await apiCookies()
    t.same(cookies.map(c => c.name).sort(), ['__Host-access_token', '__Host-refresh_token'], 'the browser holds both cookies')
    t.ok(cookies.every(c => c.httpOnly && c.secure && c.sameSite === 'Lax'))

    await page.waitForTimeout(6_000)
    const expired = record(await call(page, 'GET', '/users/me'))
    t.equal(expired.status, 401, 'the access token has expired')
    const { sessionId } = JSON.parse(login.body) as { sessionId: string }
    t.equal(JSON.parse(expired.body).sessionId, sessionId, 'the refusal names the session the page cannot read from its cookie')
    const refreshed = record(await call(page, 'POST', '/auth/refresh'))
    t.equal(refreshed.status, 200)
    t.same(JSON.parse(refreshed.body), { sessionId, expiresIn: 5 }, 'and the refresh, the session it rotated')
    t.equal(record(await call(page, 'GET', '/users/me')).status, 200, 'the refreshed cookie works')

    t.equal(await page.evaluate(() => document.cookie), '', 'document.cookie shows no token')
    for (const body of seen) t.notMatch(body, tokenPattern, 'no response body the page reads holds a token')

    t.equal(record(await call(page, 'POST', '/auth/logout')).status, 204)
    t.equal((await call(page, 'GET', '/users/me')).status, 401, 'refused after logout')
    t.same(await apiCookies(), [], 'cookies cleared')
    t.match(await allCookies(), [{ name: '__Host-auth_device', httpOnly: true, secure: true }], 'but the device cookie, which says this browser signed in before')
    await page.close()
  })

  t.test('the app reads the wait of a 429, the request id and the limit\'s state (regression: hidden from other origins)', async t => {
    const page = await context.newPage()
    await page.goto(appOrigin)
    const first = await fetchInPage(page, 'POST', `${api}/auth/verify`, { token: 'not-a-token' })
    t.equal(first.status, 401)
    t.match(first.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'the id to quote')
    t.equal(first.headers['x-ratelimit-remaining'], '0')
    const limited = await fetchInPage(page, 'POST', `${api}/auth/verify`, { token: 'not-a-token' })
    t.equal(limited.status, 429)
    t.match(limited.headers['retry-after'], /^[1-9][0-9]*$/, 'the wait')
    await page.close()
  })

  t.test('the mailed links open the service\'s own pages, which act only on a click (regression: 404)', async t => {
    const account = newAccount()
    t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: account })).statusCode, 201)
    const verification = await mail.nextMail(account.email)
    const page = await context.newPage()
    await page.goto(verification.link as string)
    t.equal(page.url(), `${api}/verify-email`, 'the token leaves the address bar and the history')
    await page.waitForTimeout(300)
    const unverified = await prisma.user.findUniqueOrThrow({ where: { email: account.email } })
    t.equal(unverified.emailVerifiedAt, null, 'opening the link changes nothing (mail scanners open links)')
    await page.click('button')
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.includes('confirmed'))
    t.not((await prisma.user.findUniqueOrThrow({ where: { email: account.email } })).emailVerifiedAt, null, 'verified by the click')

    t.equal((await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })).statusCode, 202)
    const reset = await mail.nextMail(account.email, { subject: /reset/i })
    // A template with the token in the query: a fragment of a mail client's own does not hide it (regression: "incomplete").
    await page.goto(`${api}/reset-password?token=${reset.token as string}#utm_source=mail`)
    await page.fill('input[name=password]', 'a brand new passphrase')
    await page.click('button')
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.includes('password is changed'))
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: 'a brand new passphrase' } })
    t.equal(login.statusCode, 200, 'the new password signs in')

    // The default link, the token in the fragment, in the same tab: only the fragment changes and
    // the page does not load again (regression: the first token was posted again).
    await page.goto(reset.link as string)
    await page.fill('input[name=password]', 'another new passphrase')
    await page.click('button')
    await page.waitForFunction(() => (document.getElementById('status')?.textContent ?? '') !== '')
    t.match(await page.textContent('#status'), /link/i, 'a used link says why it failed')

    t.equal((await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })).statusCode, 202)
    const next = await mail.nextMail(account.email, { subject: /reset/i })
    // What a naive link rewriter makes of a link without a query (regression: posted as part of the token).
    await page.goto(`${next.link as string}?utm_source=newsletter`)
    await page.waitForFunction(() => location.hash === '')
    t.equal(page.url(), `${api}/reset-password`, 'the new token leaves the address bar too')
    await page.fill('input[name=password]', 'a third new passphrase')
    await page.click('button')
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.includes('password is changed'))
    t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: 'a third new passphrase' } })).statusCode, 200, 'the next link, in the same tab, set it')
    await page.close()
  })

  t.test('a page on a foreign origin cannot use the cookies to change anything', async t => {
    const page = await context.newPage()
    await page.goto(appOrigin)
    const account = newAccount()
    await call(page, 'POST', '/auth/register', account)
    t.equal((await call(page, 'POST', '/auth/login', { email: account.email, password: account.password })).status, 200)
    const user = await prisma.user.findUniqueOrThrow({ where: { email: account.email } })

    const evil = await context.newPage()
    await evil.goto(evilOrigin)
    // Fire-and-forget requests a malicious page can make with the victim's cookies.
    await evil.evaluate(async api => {
      for (const path of ['/auth/refresh', '/auth/logout-all', '/auth/logout']) {
        await fetch(`${api}${path}`, { method: 'POST', credentials: 'include', mode: 'no-cors' }).catch(() => {})
      }
      await fetch(`${api}/users/me`, { method: 'PATCH', credentials: 'include', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '{"profile":{"bio":"pwned"}}' }).catch(() => {})
    }, api)
    const responses: number[] = []
    evil.on('response', response => { if (response.url().startsWith(api)) responses.push(response.status()) })
    // The form's answer, waited for: the page still loaded when the form was sent, waiting for
    // its load state waited for nothing, and a fixed wait ended before a loaded machine answered.
    const answered = evil.waitForResponse(response => response.url().startsWith(api))
    await evil.evaluate(api => {
      const form = document.getElementById('form') as HTMLFormElement
      form.action = `${api}/auth/logout-all`
      form.submit()
    }, api)
    await answered
    await evil.waitForLoadState('load')
    await evil.waitForTimeout(500)
    t.same(responses, [403], 'the form post is refused')

    const live = await prisma.session.count({ where: { userId: user.id, revokedAt: null } })
    t.equal(live, 1, 'the session survived')
    const me = await call(page, 'GET', '/users/me')
    t.equal(me.status, 200)
    t.equal(JSON.parse(me.body).profile.bio, null, 'the profile is untouched')
    await evil.close()
    await page.close()
  })
}

await withChromium(browserSuite)
