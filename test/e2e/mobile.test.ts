// A mobile client over real HTTP: JSON login, Bearer on every call, refresh with the body token, logout; the second factor.
import t from 'tap'
import { totpCode } from '../../src/services/mfa/totp.js'
import { buildTestApp } from '../helpers/app.js'
import { newAccount, proveAddress } from '../helpers/users.js'

const { app, prisma, clock } = await buildTestApp(t)
const base = await app.listen({ host: '127.0.0.1', port: 0 })

async function call (method: string, path: string, { body, token }: { body?: unknown, token?: string } = {}) {
  const headers: Record<string, string> = { 'user-agent': 'ExampleApp/2.1 (iOS 18)' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  const response = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await response.text()
  return { status: response.status, headers: response.headers, body: text === '' ? null : JSON.parse(text) }
}

t.test('the whole life of a mobile session', async t => {
  const account = newAccount()
  t.equal((await call('POST', '/auth/register', { body: account })).status, 201)

  const login = await call('POST', '/auth/login', { body: { identifier: account.username, password: account.password } })
  t.equal(login.status, 200)
  t.equal(login.headers.get('set-cookie'), null, 'no cookies for a mobile client')
  t.match(login.body, { tokenType: 'Bearer', expiresIn: 900 })
  let { accessToken, refreshToken } = login.body as { accessToken: string, refreshToken: string }

  const me = await call('GET', '/users/me', { token: accessToken })
  t.equal(me.status, 200)
  t.equal(me.body.email, account.email)

  const sessions = await call('GET', '/auth/sessions', { token: accessToken })
  t.match(sessions.body.items, [{ current: true, userAgent: 'ExampleApp/2.1 (iOS 18)', ip: '127.0.0.1' }])

  for (let i = 1; i <= 3; i++) {
    const refreshed = await call('POST', '/auth/refresh', { body: { refreshToken } })
    t.equal(refreshed.status, 200, `refresh ${i}`)
    t.not(refreshed.body.refreshToken, refreshToken, 'rotated')
    t.match(refreshed.body.refreshToken, new RegExp(`\\.${i}\\.`), 'the generation moves on')
    t.equal(refreshed.headers.get('set-cookie'), null)
    accessToken = refreshed.body.accessToken
    refreshToken = refreshed.body.refreshToken
  }
  t.equal((await call('GET', '/users/me', { token: accessToken })).status, 200)

  const logout = await call('POST', '/auth/logout', { body: { refreshToken } })
  t.equal(logout.status, 204)
  const after = await call('POST', '/auth/refresh', { body: { refreshToken } })
  t.equal(after.status, 401)
  t.equal(after.body.code, 'AUTH_REFRESH_REVOKED')
  const meAfter = await call('GET', '/users/me', { token: accessToken })
  t.equal(meAfter.status, 401)
  t.equal(meAfter.headers.get('www-authenticate'), 'Bearer error="invalid_token"')
})

t.test('a mobile session with a second factor: the challenge, the code, tokens in the body', async t => {
  const account = newAccount()
  await proveAddress(prisma, (await call('POST', '/auth/register', { body: account })).body.user.id)
  const first = await call('POST', '/auth/login', { body: { email: account.email, password: account.password } })
  const { secret } = (await call('POST', '/auth/mfa/totp', { token: first.body.accessToken, body: { currentPassword: account.password } })).body as { secret: string }
  const { recoveryCodes } = (await call('POST', '/auth/mfa/totp/confirm', { token: first.body.accessToken, body: { code: totpCode(secret, clock.now()) } })).body as { recoveryCodes: string[] }

  const challenge = await call('POST', '/auth/login', { body: { email: account.email, password: account.password } })
  t.equal(challenge.status, 200)
  t.equal(challenge.headers.get('set-cookie'), null)
  t.same(Object.keys(challenge.body).sort(), ['expiresIn', 'methods', 'mfaRequired', 'mfaToken'])
  clock.advance(30)
  const verified = await call('POST', '/auth/mfa/verify', { body: { mfaToken: challenge.body.mfaToken, code: totpCode(secret, clock.now()) } })
  t.equal(verified.status, 200)
  t.equal(verified.headers.get('set-cookie'), null, 'no cookies for a mobile client')
  t.match(verified.body, { tokenType: 'Bearer', expiresIn: 900, accessToken: String, refreshToken: String })
  const sessions = await call('GET', '/auth/sessions', { token: verified.body.accessToken })
  t.match(sessions.body.items, [{ current: true, userAgent: 'ExampleApp/2.1 (iOS 18)' }])
  const refreshed = await call('POST', '/auth/refresh', { body: { refreshToken: verified.body.refreshToken } })
  t.equal(refreshed.status, 200)

  const lost = await call('POST', '/auth/login', { body: { email: account.email, password: account.password } })
  const recovered = await call('POST', '/auth/mfa/verify', { body: { mfaToken: lost.body.mfaToken, recoveryCode: recoveryCodes[0] } })
  t.equal(recovered.status, 200, 'a recovery code when the phone is lost')
  t.equal((await call('GET', '/users/me', { token: recovered.body.accessToken })).body.mfa.recoveryCodesLeft, 9)
})
