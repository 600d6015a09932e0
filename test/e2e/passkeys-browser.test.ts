// Starts Debian's Chromium (playwright-core) with a DevTools virtual authenticator (ctap2, internal, resident keys, user
// verification): a single-page app on another origin registers a passkey, signs in with it and no password (also offered
// by conditional mediation), uses it as the second factor of a password login, and removes it.
/// <reference lib="dom" />
import type { Page } from 'playwright-core'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { launchChromium, servePage, withChromium } from '../helpers/browser.js'
import { freePort } from '../helpers/net.js'
import { newAccount, proveAddress } from '../helpers/users.js'

interface PageResponse { status: number, body: Record<string, unknown> | null }

/** fetch() from inside the page, with credentials, as the app's own JavaScript would. */
function call (page: Page, api: string, method: string, path: string, body?: unknown): Promise<PageResponse> {
  return page.evaluate(async ({ method, url, body }) => {
    const init: RequestInit = { method, credentials: 'include' }
    if (body !== undefined) {
      init.headers = { 'content-type': 'application/json' }
      init.body = JSON.stringify(body)
    }
    const response = await fetch(url, init)
    const text = await response.text()
    return { status: response.status, body: text === '' ? null : JSON.parse(text) as Record<string, unknown> }
  }, { method, url: `${api}${path}`, body })
}

/** navigator.credentials.create() with the service's options, answered as PublicKeyCredential.toJSON() (what docs/second-factor.md shows). */
function create (page: Page, options: unknown): Promise<unknown> {
  return page.evaluate(async options => {
    const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options as PublicKeyCredentialCreationOptionsJSON)
    const credential = await navigator.credentials.create({ publicKey }) as PublicKeyCredential
    return credential.toJSON()
  }, options)
}

/** navigator.credentials.get(), optionally with conditional mediation (the browser's autofill offers the passkey). */
function get (page: Page, options: unknown, mediation?: 'conditional'): Promise<unknown> {
  return page.evaluate(async ({ options, mediation }) => {
    const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options as PublicKeyCredentialRequestOptionsJSON)
    const credential = await navigator.credentials.get({ publicKey, ...(mediation === undefined ? {} : { mediation }) }) as PublicKeyCredential
    return credential.toJSON()
  }, { options, mediation })
}

async function browserSuite (): Promise<void> {
  const [apiPort, appPort] = [await freePort(), await freePort()]
  const api = `http://localhost:${apiPort}`
  const appOrigin = `http://localhost:${appPort}`
  // WebAuthn needs a secure context: http://localhost is one. RP ID localhost; WEBAUTHN_ORIGINS defaults to PUBLIC_URL and CORS_ORIGINS.
  const { app, prisma } = await buildTestApp(t, { env: { PUBLIC_URL: api, CORS_ORIGINS: appOrigin, COOKIE_SECURE: 'true' } })
  await app.listen({ host: 'localhost', port: apiPort })

  await servePage(appPort, '<!doctype html><title>app</title><input name="username" autocomplete="username webauthn">')

  const browser = await launchChromium()
  const context = await browser.newContext()
  // The session's: the device cookie (docs/security.md, "Sign-in notices", checked in browser.test.ts) outlives them.
  const apiCookies = async () => (await context.cookies([api, `${api}/auth/refresh`])).filter(cookie => cookie.name !== '__Host-auth_device')
  const page = await context.newPage()
  await page.goto(appOrigin)
  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable')
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true }
  })
  const request = (method: string, path: string, body?: unknown) => call(page, api, method, path, body)
  const account = newAccount()

  t.test('register a passkey on a signed-in session', async t => {
    const registration = await request('POST', '/auth/register', account)
    t.equal(registration.status, 201)
    await proveAddress(prisma, (registration.body?.user as { id: string }).id)
    t.equal((await request('POST', '/auth/login', { email: account.email, password: account.password })).status, 200)
    const options = await request('POST', '/auth/passkeys/register/options', { currentPassword: account.password })
    t.equal(options.status, 200)
    const registered = await request('POST', '/auth/passkeys/register/verify', { response: await create(page, options.body), name: 'Chromium' })
    t.equal(registered.status, 201, JSON.stringify(registered.body))
    t.match(registered.body, { passkey: { name: 'Chromium', transports: ['internal'] } })
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId })
    t.match(credentials, [{ isResidentCredential: true, rpId: 'localhost' }], 'a discoverable credential, for RP ID localhost')
    t.equal((await request('POST', '/auth/logout')).status, 204)
    t.same(await apiCookies(), [])
  })

  t.test('sign in with the passkey and no password; conditional mediation is offered', async t => {
    t.equal(await page.evaluate(() => PublicKeyCredential.isConditionalMediationAvailable()), true)
    const options = await request('POST', '/auth/passkeys/login/options')
    t.equal(options.status, 200)
    await page.focus('input[name=username]')
    const signedIn = await request('POST', '/auth/passkeys/login/verify', { response: await get(page, options.body, 'conditional') })
    t.equal(signedIn.status, 200, JSON.stringify(signedIn.body))
    t.same(Object.keys(signedIn.body ?? {}).sort(), ['expiresIn', 'sessionId', 'user'], 'the answer of a browser login: cookies, no token')
    t.same((await apiCookies()).map(c => c.name).sort(), ['__Host-access_token', '__Host-refresh_token'])
    t.match((await request('GET', '/auth/session')).body, { amr: ['hwk', 'user', 'mfa'] })
    t.equal((await request('POST', '/auth/logout')).status, 204)
  })

  t.test('the passkey as the second factor of a password login, then removed', async t => {
    const challenge = await request('POST', '/auth/login', { email: account.email, password: account.password })
    t.match(challenge.body, { mfaRequired: true, methods: ['webauthn'] })
    t.same(await apiCookies(), [], 'no cookie before the second factor')
    const mfaToken = challenge.body?.mfaToken
    const options = await request('POST', '/auth/mfa/webauthn/options', { mfaToken })
    const verified = await request('POST', '/auth/mfa/verify', { mfaToken, webauthn: await get(page, options.body) })
    t.equal(verified.status, 200, JSON.stringify(verified.body))
    t.match((await request('GET', '/auth/session')).body, { amr: ['pwd', 'hwk', 'user', 'mfa'] })

    const listed = await request('GET', '/auth/passkeys')
    const [passkey] = listed.body?.items as Array<{ id: string }>
    t.equal((await request('DELETE', `/auth/passkeys/${passkey?.id ?? ''}`)).status, 204)
    t.equal(await prisma.passkey.count(), 0)
    t.equal((await request('POST', '/auth/logout')).status, 204)
    const plain = await request('POST', '/auth/login', { email: account.email, password: account.password })
    t.same(Object.keys(plain.body ?? {}).sort(), ['expiresIn', 'sessionId', 'user'], 'without a passkey the password alone signs in again')
  })
}

await withChromium(browserSuite)
