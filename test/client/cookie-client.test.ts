// Cookie mode against the real service over HTTP, where the service cannot tell a browser (a webview that sends no Origin, a test):
// every call that starts a session asks for cookies itself, so a second step or a passkey sign-in does not answer tokens nobody keeps.
import t from 'tap'
import { createAuthClient, type AuthClientOptions, type Fetch, type SessionEndEvent } from '../../packages/client/src/index.js'
import { totpCode } from '../../src/services/mfa/totp.js'
import { buildTestApp } from '../helpers/app.js'
import { listen } from '../helpers/http.js'
import { SoftPasskey } from '../helpers/passkeys.js'
import { newAccount, proveAddress } from '../helpers/users.js'

const { app, prisma, clock } = await buildTestApp(t)
const { baseUrl } = await listen(app)

/**
 * fetch with a cookie jar, as a webview keeps one; no Origin, no Sec-Fetch-Site. What each answer carried is kept too.
 * `network` carries the requests: an answer it never hands on sets no cookie.
 */
function webview (options: Partial<AuthClientOptions> = {}, network: Fetch = fetch, jar = new Map<string, string>()) {
  const answers: Array<{ path: string, cookies: string[], tokens: boolean }> = []
  const fetchWithJar: Fetch = async (url, init) => {
    const headers = new Headers(init.headers)
    if (jar.size > 0) headers.set('cookie', [...jar].map(([name, value]) => `${name}=${value}`).join('; '))
    const response = await network(url, { ...init, headers })
    const cookies = response.headers.getSetCookie()
    for (const cookie of cookies) {
      const [pair = '', ...attributes] = cookie.split(';')
      const [name = '', value = ''] = pair.split('=')
      if (value === '' || attributes.some(attribute => /^\s*max-age=0$/i.test(attribute))) jar.delete(name)
      else jar.set(name, value)
    }
    const body = await response.clone().text()
    answers.push({ path: new URL(url).pathname, cookies: cookies.map(cookie => cookie.split('=')[0] ?? ''), tokens: body.includes('"accessToken"') })
    return response
  }
  return { client: createAuthClient({ baseUrl, fetch: fetchWithJar, locks: null, ...options }), answers, jar }
}

t.test('a second step by TOTP, then by passkey: cookies each time, never a token', async t => {
  const { client, answers, jar } = webview()
  t.teardown(() => { client.close() })
  const account = newAccount()
  await proveAddress(prisma, (await client.register(account)).id)
  await client.login({ email: account.email, password: account.password })
  t.ok(jar.has('__Host-access_token'), 'login sets the cookies')
  const { secret } = await client.enrolTotp({ currentPassword: account.password })
  await client.confirmTotp({ code: totpCode(secret, clock.now()) })
  const passkey = new SoftPasskey()
  await client.registerPasskey({ response: passkey.register(await client.passkeyRegistrationOptions({ currentPassword: account.password })) })
  await client.logout()
  t.same([...jar.keys()], ['__Host-auth_device'], 'logout clears them but the device cookie')

  const challenge = await client.login({ email: account.email, password: account.password })
  if (!challenge.mfaRequired) throw new Error('a second factor is set up: a challenge was expected')
  clock.advance(30)
  t.match(await client.verifyMfa({ mfaToken: challenge.mfaToken, code: totpCode(secret, clock.now()) }), { mfaRequired: false, user: { email: account.email } })
  t.match(answers.at(-1), { path: '/auth/mfa/verify', cookies: ['__Host-access_token', '__Host-refresh_token', '__Host-auth_device'], tokens: false })
  t.equal((await client.me()).email, account.email, 'signed in through the cookies')
  await client.logout()

  const second = await client.login({ email: account.email, password: account.password })
  if (!second.mfaRequired) throw new Error('a challenge was expected')
  await client.verifyMfa({ mfaToken: second.mfaToken, webauthn: passkey.assert(await client.mfaPasskeyOptions({ mfaToken: second.mfaToken })) })
  t.match(answers.at(-1), { path: '/auth/mfa/verify', cookies: ['__Host-access_token', '__Host-refresh_token', '__Host-auth_device'], tokens: false })
  t.equal((await client.me()).email, account.email)
  await client.logout()

  await client.loginWithPasskey({ response: passkey.assert(await client.passkeyLoginOptions()) })
  t.match(answers.at(-1), { path: '/auth/passkeys/login/verify', cookies: ['__Host-access_token', '__Host-refresh_token', '__Host-auth_device'], tokens: false })
  t.equal((await client.me()).email, account.email, 'a passwordless sign-in too')
})

t.test('a refresh whose answer never comes: a second try beside it at half the budget gets the same successor, and the session lives', async t => {
  let late = true
  const network: Fetch = async (url, init) => {
    if (!late || new URL(url).pathname !== '/auth/refresh') return fetch(url, init)
    late = false
    // The service rotates the token at once; its answer, cookies and all, comes after the client gave up.
    await fetch(url, { ...init, signal: null })
    const { signal } = init
    return new Promise<never>((_resolve, reject) => {
      if (signal?.aborted === true) reject(signal.reason)
      signal?.addEventListener('abort', () => { reject(signal.reason) })
    })
  }
  const { client, answers } = webview({ refreshTimeoutMs: 1000 }, network)
  t.teardown(() => { client.close() })
  const ended: SessionEndEvent[] = []
  client.onSessionEnd(event => { ended.push(event) })
  const account = newAccount()
  await client.register(account)
  // Issued as if 20 minutes ago: the access cookie is expired, and the first call refreshes.
  clock.advance(-1200)
  await client.login({ email: account.email, password: account.password })
  clock.advance(1200)
  t.equal((await client.me()).email, account.email, 'the call succeeds')
  t.equal(late, false, 'an answer came too late')
  t.same(answers.slice(-2).map(answer => answer.path), ['/auth/refresh', '/users/me'], 'the second try answered')
  t.match(await prisma.session.findMany({ where: { user: { email: account.email } } }), [{ generation: 1, revokedAt: null }], 'one rotation')
  // Past the service's grace window, the cookie kept is the successor, not the retired one.
  clock.advance(11)
  t.equal((await client.fetch('/auth/refresh', { method: 'POST' })).status, 200)
  t.same(ended, [], 'never logged out')
})

// Two apps on one service's cookies (two origins in CORS_ORIGINS, say): neither hears the
// other's sign-in. Regressions: the call was refreshed with the new session's cookies and sent
// again, and changed the profile of whoever had signed in since; with a refresh of the app's
// between the call and that sign-in, it still was after the first fix.
t.test('a call whose token expired in a session another app replaced fails SESSION_CHANGED: sent again, it is refused as the new session', async t => {
  for (const refreshedBefore of [false, true]) {
    let answerLate: () => void = () => {}
    const switched = new Promise<void>(resolve => { answerLate = resolve })
    let refused: () => void = () => {}
    const held = new Promise<void>(resolve => { refused = resolve })
    let holding = true
    const network: Fetch = async (url, init) => {
      const response = await fetch(url, init)
      // Refused as expired at once; the answer comes back after the other app signed in.
      if (holding && init.method === 'PATCH') {
        holding = false
        refused()
        await switched
      }
      return response
    }
    const app = webview({}, network)
    const sibling = webview({}, fetch, app.jar)
    const otherApp = webview({ name: 'another app' }, fetch, app.jar)
    t.teardown(() => { app.client.close(); sibling.client.close(); otherApp.client.close() })
    // The sibling tab's call must go out after it heard of the app's sign-in: one sent before
    // is taken for an older session's and fails SESSION_CHANGED, as it should (on a loaded
    // machine, a fixed wait ended before the tab's message was delivered).
    const siblingHeard = new Promise<void>(resolve => { sibling.client.onSignIn(resolve) })
    const [first, second] = [newAccount(), newAccount()]
    await app.client.register(first)
    await app.client.register(second)
    // Issued as if 20 minutes ago: the access cookie is expired.
    clock.advance(-1200)
    await app.client.login({ email: first.email, password: first.password })
    clock.advance(1200)
    await siblingHeard
    const call = app.client.updateMe({ profile: { displayName: 'the first user' } }).catch((e: unknown) => e)
    await held
    if (refreshedBefore) t.equal((await sibling.client.me()).email, first.email, 'another tab of the app refreshes first')
    await otherApp.client.logout()
    await otherApp.client.login({ email: second.email, password: second.password })
    answerLate()
    const which = refreshedBefore ? 'a refresh between' : 'no refresh between'
    t.match(await call, { code: 'SESSION_CHANGED', status: 401 }, which)
    const users = await prisma.user.findMany({ where: { email: { in: [first.email, second.email] } }, select: { profile: { select: { displayName: true } } } })
    t.same(users.map(user => user.profile?.displayName ?? null), [null, null], `${which}: neither user's profile changed`)
    t.equal((await app.client.me()).email, second.email, `${which}: the app goes on in the session its cookies hold`)
  }
})

// The client's README tells apps to end their own session with logout(): revoked by id, this
// client learns of it only when its next call is refused, and tells it then.
t.test('cookie mode: the current session revoked by id clears the cookies, and the next call tells its end', async t => {
  const { client, jar } = webview()
  t.teardown(() => { client.close() })
  const ended: SessionEndEvent[] = []
  client.onSessionEnd(event => { ended.push(event) })
  const account = newAccount()
  await client.register(account)
  await client.login({ email: account.email, password: account.password })
  const current = (await client.sessions()).items.find(session => session.current)
  await client.revokeSession(current?.id as string)
  t.same([...jar.keys()].filter(name => name !== '__Host-auth_device'), [], 'the session\'s cookies cleared')
  t.same(ended, [], 'not told yet')
  await t.rejects(client.me(), { code: 'AUTH_REQUIRED', status: 401 })
  t.same(ended, [{ reason: 'refused', code: 'AUTH_REQUIRED' }], 'told at the next call')
})
