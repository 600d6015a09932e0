// Rate limits per route and per account, 429 RATE_LIMITED with Retry-After, in memory and shared through Redis.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { pino } from 'pino'
import t from 'tap'
import { clientAddresses, clientOf } from '../../src/plugins/client-address.js'
import { perClientIp, rateLimits } from '../../src/plugins/rate-limits.js'
import { buildTestApp } from '../helpers/app.js'
import { logCapture } from '../helpers/mail.js'
import { freePort, startTcpProxy, type TcpProxy } from '../helpers/net.js'
import { loginWithBody, loginWithCookies, newAccount, registerAccount, registerProvenAccount } from '../helpers/users.js'

const REDIS_URL = 'redis://127.0.0.1:6379'
const uniquePrefix = () => `test-${randomBytes(6).toString('hex')}:`

const login = (app: Awaited<ReturnType<typeof buildTestApp>>['app'], payload: object, remoteAddress = '127.0.0.1') =>
  app.inject({ method: 'POST', url: '/auth/login', payload, remoteAddress })

t.test('login per client ip: 429 RATE_LIMITED in the error shape, with Retry-After and the rate-limit headers', async t => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_LOGIN_IP: '3/60' } })
  for (let i = 0; i < 3; i++) {
    const response = await login(app, { email: `nobody-${i}@example.com`, password: 'wrong password' })
    t.equal(response.statusCode, 401)
    t.equal(response.headers['x-ratelimit-limit'], '3')
    t.equal(response.headers['x-ratelimit-remaining'], String(2 - i))
  }
  const limited = await login(app, { email: 'other@example.com', password: 'wrong password' })
  t.equal(limited.statusCode, 429)
  t.same(limited.json(), { statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests', message: 'Too many requests; retry later' })
  t.ok(Number(limited.headers['retry-after']) > 0 && Number(limited.headers['retry-after']) <= 60, 'Retry-After in seconds')
  t.equal(limited.headers['x-ratelimit-limit'], '3')
  t.equal(limited.headers['x-ratelimit-remaining'], '0')
  t.ok(Number(limited.headers['x-ratelimit-reset']) > 0)
  const elsewhere = await login(app, { email: 'other@example.com', password: 'wrong password' }, '10.1.2.3')
  t.equal(elsewhere.statusCode, 401, 'another client ip has its own count')
})

t.test('login per account identifier and client: the same 429 whether or not the account exists, whatever the case or unicode form', async t => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_LOGIN_ACCOUNT: '2/60' } })
  const account = await registerAccount(app)
  const answers: Record<string, { status: number, body: unknown, headers: string[] }> = {}
  for (const email of [account.email, 'no-such-account@example.com']) {
    const variants = [email, email.toUpperCase(), email.replace('e', '\uff45')] // fullwidth e: the same after NFKC
    let last
    // One IPv6 client by its /64 network, as the per-ip limits count it.
    for (const [i, variant] of variants.entries()) {
      last = await login(app, { identifier: variant, password: 'wrong password' }, `2001:db8:0:1::${i + 1}`)
    }
    t.equal(last?.statusCode, 429, `${email}: the third attempt of one client is refused`)
    answers[email] = { status: last?.statusCode ?? 0, body: last?.json(), headers: Object.keys(last?.headers ?? {}).sort() }
  }
  t.same(answers[account.email], answers['no-such-account@example.com'], 'identical answers for an account and no account')
  t.equal((await login(app, { email: account.email, password: account.password }, '2001:db8:0:1::9')).statusCode, 429, 'even the right password waits, on that client')
})

// A count of every client's attempts let anyone keep the owner from logging in with a few
// requests per window, which a password reset did not lift (regression).
t.test('another client\'s attempts on an identifier hold up no one else', async t => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_LOGIN_ACCOUNT: '2/60' } })
  const account = await registerAccount(app)
  for (let i = 0; i < 3; i++) await login(app, { email: account.email, password: 'wrong password' }, '10.0.0.1')
  t.equal((await login(app, { email: account.email, password: 'wrong password' }, '::ffff:10.0.0.1')).statusCode, 429, 'an IPv4-mapped address is that client')
  const owner = await login(app, { email: account.email, password: account.password }, '10.0.0.2')
  t.equal(owner.statusCode, 200, 'the owner, elsewhere, logs in')
  t.ok(Number(owner.headers['x-ratelimit-remaining']) >= 1, 'and is shown nothing of the other client\'s count')
})

t.test('register, refresh, verify and the mail routes have their own per-ip limits; forgot also one per address, resend and admin resets one per user', async t => {
  const { app, prisma } = await buildTestApp(t, {
    env: { RATE_LIMIT_REGISTER: '1/60', RATE_LIMIT_REFRESH: '1/60', RATE_LIMIT_VERIFY: '1/60', RATE_LIMIT_MAIL: '1/60', RATE_LIMIT_MAIL_ACCOUNT: '1/60' }
  })
  const calls: Array<[string, object]> = [
    ['/auth/register', newAccount()],
    ['/auth/refresh', { refreshToken: 'x' }],
    ['/auth/verify', { token: 'x' }],
    ['/auth/password/forgot', { email: 'a@example.com' }],
    ['/auth/password/reset', { token: 'x', password: 'a new passphrase' }],
    ['/auth/email/verify', { token: 'x' }],
    ['/auth/email/resend', {}]
  ]
  for (const [url, payload] of calls) {
    const first = await app.inject({ method: 'POST', url, payload, remoteAddress: '10.0.0.1' })
    t.not(first.statusCode, 429, `${url}: first`)
    const second = await app.inject({ method: 'POST', url, payload, remoteAddress: '10.0.0.1' })
    t.equal(second.statusCode, 429, `${url}: second`)
    t.equal(second.json().code, 'RATE_LIMITED')
  }
  const sameAddress = await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: 'A@Example.com' }, remoteAddress: '10.0.0.2' })
  t.equal(sameAddress.statusCode, 429, 'the same address from another ip')
  const otherAddress = await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: 'b@example.com' }, remoteAddress: '10.0.0.3' })
  t.equal(otherAddress.statusCode, 202)
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  // The registration spent its address's budget (one a window here): only the user's count is under test.
  await prisma.user.update({ where: { id: account.user.id }, data: { emailVerifiedAt: new Date() } })
  const resend = (remoteAddress: string) => app.inject({ method: 'POST', url: '/auth/email/resend', headers: { authorization: `Bearer ${accessToken}` }, remoteAddress })
  t.equal((await resend('10.0.0.4')).statusCode, 202)
  t.equal((await resend('10.0.0.5')).statusCode, 429, 'one user cannot have mails resent from many ips')

  await prisma.user.update({ where: { id: account.user.id }, data: { role: 'admin' } })
  const admin = { authorization: `Bearer ${(await loginWithBody(app, account)).accessToken}` }
  const adminReset = () => app.inject({ method: 'POST', url: `/admin/users/${account.user.id}/password-reset`, headers: admin })
  t.equal((await adminReset()).statusCode, 202)
  const flood = await adminReset()
  t.equal(flood.statusCode, 429, 'nor have an admin send them reset mails without end')
  t.equal(flood.json().code, 'RATE_LIMITED')
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'password.reset_sent' } }), 1, 'one mail sent')

  const { cookie } = await loginWithCookies(app, account)
  const refresh = () => app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie, 'sec-fetch-site': 'same-origin' }, remoteAddress: '10.0.0.6' })
  t.equal((await refresh()).statusCode, 200)
  const limited = await refresh()
  t.equal(limited.statusCode, 429)
  t.same(limited.cookies, [], 'a rate-limited browser keeps its cookies: the session was not refused')
})

// Regression: an email change mailed two addresses per request with only the generous default
// limit, and a wrong current password cost a hash per request at the default's pace.
t.test('an email change counts as a mail route, per client and per user; the routes that check the current password, and passkey registration, as a login', async t => {
  const { app, prisma } = await buildTestApp(t, { env: { RATE_LIMIT_MAIL: '1/60', RATE_LIMIT_MAIL_ACCOUNT: '1/60', RATE_LIMIT_LOGIN_IP: '2/60' } })
  const account = await registerAccount(app)
  const headers = { authorization: `Bearer ${(await loginWithBody(app, account)).accessToken}` }
  const patch = (payload: object, remoteAddress: string) => app.inject({ method: 'PATCH', url: '/users/me', headers, payload, remoteAddress })
  t.equal((await patch({ email: `first-${account.email}`, currentPassword: account.password }, '10.0.1.1')).statusCode, 200)
  const again = await patch({ email: `second-${account.email}`, currentPassword: account.password }, '10.0.1.2')
  t.equal(again.statusCode, 429, 'one user cannot have change mails sent from many ips')
  t.equal(again.json().code, 'RATE_LIMITED')
  t.ok(Number(again.headers['retry-after']) > 0)
  t.equal((await prisma.user.findUniqueOrThrow({ where: { id: account.user.id } })).pendingEmail, `first-${account.email}`, 'the refused change changed nothing')
  t.equal((await patch({ profile: { displayName: 'Ada' } }, '10.0.1.2')).statusCode, 200, 'a profile change sends no mail and is not counted')

  const other = await registerAccount(app)
  const otherHeaders = { authorization: `Bearer ${(await loginWithBody(app, other)).accessToken}` }
  const fromOneClient = await app.inject({ method: 'PATCH', url: '/users/me', headers: otherHeaders, payload: { email: `first-${other.email}`, currentPassword: other.password }, remoteAddress: '10.0.1.1' })
  t.equal(fromOneClient.statusCode, 429, 'nor one client for many users')

  for (const [method, url, payload] of [['POST', '/auth/password/change', { currentPassword: 'wrong password', newPassword: 'a brand new passphrase' }], ['DELETE', '/users/me', { password: 'wrong password' }]] as const) {
    for (let i = 0; i < 2; i++) t.equal((await app.inject({ method, url, headers, payload, remoteAddress: '10.0.1.3' })).json().code, 'INVALID_CURRENT_PASSWORD', `${method} ${url}: try ${i + 1}`)
    t.equal((await app.inject({ method, url, headers, payload, remoteAddress: '10.0.1.3' })).statusCode, 429, `${method} ${url}: limited as a login`)
  }
  // Limits run before authentication: anonymous attempts count.
  for (const url of ['/auth/passkeys/register/options', '/auth/passkeys/register/verify', '/auth/mfa/recovery-codes', '/auth/reauthenticate/webauthn/options']) {
    const statuses = []
    for (let i = 0; i < 3; i++) statuses.push((await app.inject({ method: 'POST', url, payload: {} })).statusCode)
    t.same(statuses, [401, 401, 429], url)
  }
})

// Regression: a mailbox could be flooded from many clients and accounts with the mails sent to an
// address nobody had proven to hold: registering it (then deleting the account, and again),
// or staging it as the pending email of many accounts and asking for the link again.
t.test('mails to an address nobody has proven to hold: one budget per address over registration, email change and resend, whoever asks; the same 429 whether or not an account has the address', async t => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_MAIL_ACCOUNT: '3/60' } })
  const victim = `victim-${randomBytes(4).toString('hex')}@example.com`
  const [one, two] = [await registerAccount(app), await registerAccount(app)]
  const headersOf = async (account: { email: string, password: string }) => ({ authorization: `Bearer ${(await loginWithBody(app, account)).accessToken}` })
  const [asOne, asTwo] = [await headersOf(one), await headersOf(two)]
  const stage = (headers: Record<string, string>, currentPassword: string, email: string, remoteAddress: string) => app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { email, currentPassword }, remoteAddress })
  const resend = (headers: Record<string, string>, remoteAddress: string) => app.inject({ method: 'POST', url: '/auth/email/resend', headers, remoteAddress })
  const register = (email: string, remoteAddress: string) => app.inject({ method: 'POST', url: '/auth/register', payload: { ...newAccount(), email }, remoteAddress })

  t.equal((await stage(asOne, one.password, victim, '10.0.2.1')).statusCode, 200, 'one account stages the address')
  t.equal((await resend(asOne, '10.0.2.2')).statusCode, 202, 'and has the link sent again')
  t.equal((await stage(asTwo, two.password, victim.toUpperCase(), '10.0.2.3')).statusCode, 200, 'another account stages it, spelt otherwise')
  const refused = await register(victim, '10.0.2.4')
  t.equal(refused.statusCode, 429, 'a registration of the address, from yet another client, is over its budget')
  t.equal(refused.json().code, 'RATE_LIMITED')
  t.ok(Number(refused.headers['retry-after']) > 0)
  t.equal((await resend(asTwo, '10.0.2.5')).statusCode, 429, 'so is a resend to it')
  t.equal((await stage(asTwo, two.password, victim, '10.0.2.6')).statusCode, 429, 'and an email change to it')
  t.equal((await register(`else-${victim}`, '10.0.2.4')).statusCode, 201, 'other addresses have their own budget')

  // An address with an account: its registration and two refused ones (409) spend the same budget.
  const owner = newAccount()
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await app.inject({ method: 'POST', url: '/auth/register', payload: { ...newAccount(), email: owner.email }, remoteAddress: `10.0.3.${i}` })).statusCode)
  t.same(statuses, [201, 409, 409, 429])
  const answerOf = async (email: string) => {
    const response = await register(email, '10.0.3.9')
    return { status: response.statusCode, body: response.json(), headers: Object.keys(response.headers).sort() }
  }
  t.same(await answerOf(owner.email), await answerOf(victim), 'the same 429 for an address with an account and one without')
})

// Regression: a +tag was an address of its own, with a budget of its own, though it reaches the same mailbox.
t.test('an address\'s +tags spend its mail budget', async t => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_MAIL_ACCOUNT: '1/60' } })
  const box = `box-${randomBytes(4).toString('hex')}`
  const register = (email: string, remoteAddress: string) => app.inject({ method: 'POST', url: '/auth/register', payload: { ...newAccount(), email }, remoteAddress })
  t.equal((await register(`${box}@example.com`, '10.0.5.1')).statusCode, 201)
  t.equal((await register(`${box}+1@example.com`, '10.0.5.2')).statusCode, 429, 'a +tag of it')
  t.equal((await register(`${box}+2+3@EXAMPLE.com`, '10.0.5.3')).statusCode, 429, 'another, spelt otherwise')
  t.equal((await register(`other-${box}@example.com`, '10.0.5.4')).statusCode, 201, 'another mailbox')
})

// Regression: Gmail's dots made as many budgets of one mailbox as it has letters, and googlemail.com one more.
t.test('the spellings of one Gmail mailbox spend its mail budget', async t => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_MAIL_ACCOUNT: '1/60' } })
  const box = `box${randomBytes(4).toString('hex')}`
  const register = (email: string, remoteAddress: string) => app.inject({ method: 'POST', url: '/auth/register', payload: { ...newAccount(), email }, remoteAddress })
  t.equal((await register(`${box}@gmail.com`, '10.0.6.1')).statusCode, 201)
  t.equal((await register(`${box.slice(0, 3)}.${box.slice(3)}@gmail.com`, '10.0.6.2')).statusCode, 429, 'with a dot')
  t.equal((await register(`${box.split('').join('.')}+x@GMAIL.com`, '10.0.6.3')).statusCode, 429, 'dots everywhere, and a +tag')
  t.equal((await register(`${box}@googlemail.com`, '10.0.6.4')).statusCode, 429, 'the other domain')
  t.equal((await register(`${box.slice(0, 3)}.${box.slice(3)}@example.com`, '10.0.6.5')).statusCode, 201, 'elsewhere a dot makes another mailbox')
})

// Regression: sending one's own address, to cancel a pending change, spent the mail budgets: a
// stranger registering the address (409) kept its owner from cancelling.
t.test('cancelling a pending email change spends no mail budget', async t => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_MAIL_ACCOUNT: '1/60' } })
  const owner = await registerAccount(app, newAccount())
  const headers = { authorization: `Bearer ${(await loginWithBody(app, owner)).accessToken}` }
  const staged = await app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { email: `new-${owner.email}`, currentPassword: owner.password } })
  t.equal(staged.json().pendingEmail, `new-${owner.email}`)
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: { ...newAccount(), email: owner.email.toUpperCase() }, remoteAddress: '10.0.6.1' })).statusCode, 429, 'a stranger has spent the address\'s budget')
  const cancelled = await app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { email: owner.email } })
  t.equal(cancelled.statusCode, 200, cancelled.body)
  t.equal(cancelled.json().pendingEmail, null, 'the owner cancels all the same')
})

t.test('a registration refused for a weak password spends none of the address\'s mail budget', async t => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_MAIL_ACCOUNT: '1/60' } })
  const account = newAccount()
  for (const password of ['password123', 'qwertyuiop']) {
    const weak = await app.inject({ method: 'POST', url: '/auth/register', payload: { ...account, password } })
    t.equal(weak.json().code, 'PASSWORD_TOO_WEAK', password)
  }
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: account })).statusCode, 201, 'the owner\'s third try registers')
})

t.test('with REDIS_URL, an address\'s mail budget is shared by every instance', async t => {
  const env = { REDIS_URL, REDIS_KEY_PREFIX: uniquePrefix(), RATE_LIMIT_MAIL_ACCOUNT: '1/60' }
  const [one, two] = [await buildTestApp(t, { env }), await buildTestApp(t, { env })]
  const email = `victim-${randomBytes(4).toString('hex')}@example.com`
  t.equal((await registerAccount(one.app, { ...newAccount(), email })).user.email, email)
  const again = await two.app.inject({ method: 'POST', url: '/auth/register', payload: { ...newAccount(), email } })
  t.equal(again.statusCode, 429, 'the other instance (and its database, where the address is free) mails it no more')
})

// Regression: RATE_LIMIT_MAIL_ACCOUNT was counted per route: three email changes and three
// resends in one window.
t.test('an account\'s email changes and resends share one mail budget', async t => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_MAIL_ACCOUNT: '3/60' } })
  const account = await registerAccount(app)
  const headers = { authorization: `Bearer ${(await loginWithBody(app, account)).accessToken}` }
  const stage = (email: string) => app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { email, currentPassword: account.password } })
  const resend = () => app.inject({ method: 'POST', url: '/auth/email/resend', headers })
  t.same([(await stage(`a-${account.email}`)).statusCode, (await resend()).statusCode, (await stage(`b-${account.email}`)).statusCode], [200, 202, 200])
  t.equal((await resend()).statusCode, 429, 'a resend after two changes and a resend')
  t.equal((await stage(`c-${account.email}`)).statusCode, 429, 'an email change too')
})

// Without a trusted proxy the address is the socket's: a dual-stack socket's IPv4 clients must
// each count alone, not as one IPv6 /64 (::ffff:0:0/64 holds every one of them).
t.test('a dual-stack socket\'s IPv4 clients count one by one', async t => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_LOGIN_IP: '2/60', RATE_LIMIT_LOGIN_ACCOUNT: '100/60' } })
  const attempt = async (remoteAddress: string) => (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'x@example.com', password: 'wrong password' }, remoteAddress })).statusCode
  t.same([await attempt('::ffff:192.0.2.9'), await attempt('::ffff:192.0.2.9'), await attempt('::ffff:192.0.2.9')], [401, 401, 429])
  t.equal(await attempt('::ffff:192.0.2.10'), 401, 'another client, its own count')
  t.equal(await attempt('192.0.2.9'), 429, 'the same client over IPv4')
})

// Regression: behind a trusted proxy, X-Forwarded-For was taken as the proxy wrote it: each
// port a new client, and anything at all stored as the ip of sessions and audit entries.
t.test('a forwarded address counts in one form: no port, IPv4-mapped as IPv4, IPv6 by its /64; what is no address counts as the proxy', async t => {
  const { app, prisma } = await buildTestApp(t, { env: { TRUST_PROXY: '127.0.0.1', RATE_LIMIT_LOGIN_IP: '2/60', RATE_LIMIT_LOGIN_ACCOUNT: '100/60' } })
  const attempt = async (forwarded: string) => (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'x@example.com', password: 'wrong password' }, headers: { 'x-forwarded-for': forwarded }, remoteAddress: '127.0.0.1' })).statusCode
  t.same([await attempt('192.0.2.7:1'), await attempt('192.0.2.7:2'), await attempt('::ffff:192.0.2.7')], [401, 401, 429], 'ip:port and IPv4-mapped forms are one client')
  t.same([await attempt('[2001:db8:0:7::5]:443'), await attempt('[2001:DB8:0:7::6]:444'), await attempt('2001:db8:0:7::7')], [401, 401, 429], '[v6]:port is its /64')
  t.same([await attempt('not-an-ip'), await attempt('also not one'), await attempt('127.0.0.1')], [401, 401, 429], 'values that are no address count as the proxy itself')
  const audited = await prisma.auditEvent.findMany({ where: { action: 'login.failed' }, select: { ip: true } })
  t.same([...new Set(audited.map(entry => entry.ip))].sort(), ['127.0.0.1', '192.0.2.7', '2001:db8:0:7::5', '2001:db8:0:7::6'], 'the audit trail holds addresses only, in one form')
})

t.test('a generous default covers the other routes and unknown URLs; liveness is never limited', async t => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_DEFAULT: '2/60' } })
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await app.inject({ method: 'GET', url: '/users/me' })).statusCode)
  t.same(statuses, [401, 401, 429])
  const probes = []
  for (let i = 0; i < 3; i++) probes.push((await app.inject({ method: 'GET', url: '/nope', remoteAddress: '10.0.0.7' })).statusCode)
  t.same(probes, [404, 404, 429])
  for (let i = 0; i < 5; i++) t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200)
})

// Regression: only the default limit's store kept MEMORY_ENTRIES (10 000) clients; a route's own
// limit and a keyed budget kept LocalStore's default 5 000, so a flood from 5 000 addresses
// pushed out a client that had spent its budget, and gave the budget back. On the plugin alone,
// as the app registers it: 10 000 requests cost about a second here, four times that through the app.
t.test('in memory, a route\'s own limit and a keyed budget remember a client past 5 000 others', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(clientAddresses, { behindProxy: false })
  await app.register(rateLimits, { defaultLimit: { max: 100_000, windowSeconds: 600 }, redis: null, keyPrefix: '', now: () => new Date() })
  const once = { max: 1, windowSeconds: 600 }
  app.post('/own-limit', { config: { rateLimit: perClientIp(once) } }, async () => 'ok')
  app.post('/keyed-budget', { preHandler: app.rateLimitBy('keyed-budget', once, clientOf) }, async () => 'ok')
  const ownLimit = (remoteAddress: string) => app.inject({ method: 'POST', url: '/own-limit', remoteAddress })
  const keyedBudget = (remoteAddress: string) => app.inject({ method: 'POST', url: '/keyed-budget', remoteAddress })
  const client = '192.0.2.1'
  t.same([(await ownLimit(client)).statusCode, (await keyedBudget(client)).statusCode], [200, 200])
  t.same([(await ownLimit(client)).statusCode, (await keyedBudget(client)).statusCode], [429, 429], 'both budgets spent')
  // As many others as LocalStore's default held (with the client, one too many), in batches:
  // the order within one does not matter, all come after the client.
  for (let first = 0; first < 5_000; first += 100) {
    await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const other = `10.0.${(first + i) >> 8}.${(first + i) & 255}`
      await Promise.all([ownLimit(other), keyedBudget(other)])
    }))
  }
  t.equal((await ownLimit(client)).statusCode, 429, 'the route\'s own limit still refuses the client')
  t.equal((await keyedBudget(client)).statusCode, 429, 'and so does the keyed budget')
})

t.test('with REDIS_URL, instances share the counters', async t => {
  const env = { REDIS_URL, REDIS_KEY_PREFIX: uniquePrefix(), RATE_LIMIT_LOGIN_IP: '3/60', RATE_LIMIT_LOGIN_ACCOUNT: '100/60' }
  const one = await buildTestApp(t, { env })
  const two = await buildTestApp(t, { env })
  t.same([one.app.redis?.status, two.app.redis?.status], ['ready', 'ready'], 'both connected by the time they are ready')
  const statuses = []
  for (const app of [one.app, two.app, one.app, two.app]) statuses.push((await login(app, { email: 'x@example.com', password: 'wrong password' })).statusCode)
  t.same(statuses, [401, 401, 401, 429], 'the fourth attempt is refused, whichever instance takes it')
  const keys = await one.app.redis?.keys(`${env.REDIS_KEY_PREFIX}*`)
  t.ok((keys?.length ?? 0) > 0, 'the counters live under the configured prefix')
  t.notOk(keys?.some(key => key.includes('x@example.com')), 'no identifier in clear in Redis')
})

t.test('when Redis cannot be reached the service keeps answering, and each instance keeps counting in memory', async t => {
  const env = { REDIS_URL: `redis://127.0.0.1:${await freePort()}`, RATE_LIMIT_LOGIN_IP: '2/60' }
  const { app } = await buildTestApp(t, { env })
  const account = await registerAccount(app)
  t.equal((await login(app, { email: account.email, password: account.password })).statusCode, 200, 'login works without Redis')
  t.equal((await login(app, { email: account.email, password: 'wrong password' })).statusCode, 401)
  t.equal((await login(app, { email: account.email, password: account.password })).statusCode, 429, 'and the limit still holds')
  t.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200, 'readiness does not depend on Redis')
})

t.test('Redis going away mid-way: the limits move to memory and come back to Redis', async t => {
  const { createServer, connect } = await import('node:net')
  // A loopback relay to the machine's Redis that the test can cut, as a network failure would.
  const sockets = new Set<import('node:net').Socket>()
  const relay = createServer(client => {
    const upstream = connect(6379, '127.0.0.1')
    for (const socket of [client, upstream]) { sockets.add(socket); socket.on('error', () => {}); socket.on('close', () => sockets.delete(socket)) }
    client.pipe(upstream).pipe(client)
  })
  const port = await freePort()
  await new Promise<void>(resolve => relay.listen(port, '127.0.0.1', resolve))
  const prefix = uniquePrefix()
  const { app } = await buildTestApp(t, { env: { REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_KEY_PREFIX: prefix, RATE_LIMIT_VERIFY: '2/60' } })
  t.teardown(() => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); relay.close(() => resolve()) }))
  const verify = () => app.inject({ method: 'POST', url: '/auth/verify', payload: { token: 'x' } })
  t.equal(app.redis?.status, 'ready', 'connected at start')
  t.equal((await verify()).statusCode, 401, 'counted in Redis')
  relay.close()
  for (const socket of sockets) socket.destroy()
  await new Promise(resolve => setTimeout(resolve, 100))
  const during = [(await verify()).statusCode, (await verify()).statusCode]
  t.same(during, [401, 429], 'Redis away: the instance counts on its own, from the attempt Redis counted, and still refuses (regression: from zero)')
  await new Promise<void>(resolve => relay.listen(port, '127.0.0.1', resolve))
  const deadline = Date.now() + 10_000
  while (app.redis?.status !== 'ready' && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(app.redis?.status, 'ready', 'reconnected')
  t.same([(await verify()).statusCode, (await verify()).statusCode], [401, 429], 'back on the shared count, which Redis kept through the outage')
})

t.test('Redis going away after a client spent its budget through it on two instances: at most twice the budget in all (regression: three times, each instance counting from zero)', async t => {
  const relay = await startTcpProxy(6379)
  t.teardown(relay.close)
  const env = { REDIS_URL: `redis://127.0.0.1:${relay.port}`, REDIS_KEY_PREFIX: uniquePrefix(), RATE_LIMIT_LOGIN_IP: '4/60', RATE_LIMIT_LOGIN_ACCOUNT: '100/60' }
  const instances = [(await buildTestApp(t, { env })).app, (await buildTestApp(t, { env })).app]
  const attempts = async (rounds: number) => {
    const statuses: number[] = []
    for (let round = 0; round < rounds; round++) for (const app of instances) statuses.push((await login(app, { email: 'x@example.com', password: 'wrong password' })).statusCode)
    return statuses
  }
  const shared = await attempts(3)
  t.same(shared, [401, 401, 401, 401, 429, 429], 'the shared budget, whichever instance takes the attempt')
  relay.hold()
  const away = await attempts(4)
  const checked = [...shared, ...away].filter(status => status === 401).length
  t.ok(checked <= 8, `${checked} password checks in all, at most the budget once per instance (${away.join(' ')} while Redis was away)`)
  t.ok(away.includes(429), 'and the limit still holds on each')
  relay.release()
})

// The counter scripts a client sent through `relay` (EVALSHA, or EVAL when Redis did not have the script yet).
const counterCommands = (relay: TcpProxy) => relay.sent().match(/\r\neval(sha)?\r\n/gi)?.length ?? 0

t.test('Redis partitioned: after one check waits out the command timeout, the limits count in memory without asking Redis, then go back to it', async t => {
  // A partition: no error, no close, each command waits for its timeout.
  const relay = await startTcpProxy(6379)
  t.teardown(relay.close)
  const capture = logCapture()
  const env = { REDIS_URL: `redis://127.0.0.1:${relay.port}`, REDIS_KEY_PREFIX: uniquePrefix(), RATE_LIMIT_LOGIN_IP: '2/60', RATE_LIMIT_LOGIN_ACCOUNT: '100/60' }
  const { app, clock } = await buildTestApp(t, { env, logger: pino({ level: 'info' }, capture.stream) })
  // A login checks two limits: the client ip's and the account identifier's.
  const attempt = async () => (await login(app, { email: 'x@example.com', password: 'wrong password' })).statusCode
  const redisLines = () => capture.lines.filter(line => String(line.msg).startsWith('redis ')).map(line => line.msg)
  t.equal(await attempt(), 401, 'counted in Redis')

  relay.hold()
  const sentBefore = counterCommands(relay)
  t.same([await attempt(), await attempt(), await attempt()], [401, 429, 429], 'the limit holds, counted in memory from the attempt Redis counted (regression: from zero, as a stalled event loop made it too)')
  t.equal(counterCommands(relay) - sentBefore, 1, 'only the first check asked Redis (and waited); the others counted in memory at once')
  t.same(redisLines(), ['redis unreachable: rate limits count in memory on each instance until it is back'])
  t.match(capture.lines.find(line => line.level === 40 && line.msg === redisLines()[0]), { err: { message: 'Command timed out' } }, 'saying why')
  clock.advance(5)
  t.equal(await attempt(), 429)
  t.equal(counterCommands(relay) - sentBefore, 2, 'a few seconds later one check asks again, and still gets no answer')

  relay.release()
  clock.advance(5)
  const sentAfter = counterCommands(relay)
  t.same([await attempt(), await attempt()], [429, 429], 'refused by the ip\'s limit, before the account\'s is checked')
  t.equal(counterCommands(relay) - sentAfter, 2, 'once Redis answers, every check asks it again')
  t.same(redisLines(), [
    'redis unreachable: rate limits count in memory on each instance until it is back',
    'redis reachable again: rate limits are shared again'
  ], 'one line each way')
})

// Regression: starting a TOTP setup had only the default limit (600 a minute), and each start
// draws a QR code and writes an audit entry kept a year.
t.test('starting a TOTP setup is limited per client as the routes that check a code are', async t => {
  const { app, prisma } = await buildTestApp(t, { env: { RATE_LIMIT_LOGIN_IP: '2/60' } })
  const account = await registerProvenAccount(app, prisma)
  const headers = { authorization: `Bearer ${(await loginWithBody(app, account)).accessToken}` }
  const start = () => app.inject({ method: 'POST', url: '/auth/mfa/totp', headers, payload: { currentPassword: account.password } })
  t.equal((await start()).statusCode, 200)
  t.equal((await start()).statusCode, 200, 'a second start replaces the first')
  const refused = await start()
  t.equal(refused.statusCode, 429)
  t.equal(refused.json().code, 'RATE_LIMITED')
  t.equal(await prisma.auditEvent.count({ where: { action: 'mfa.totp_enrolment_started', subjectId: account.user.id } }), 2, 'no entry for the refused one')
})

// Regression: a stranger's one request read, in x-ratelimit-remaining and -reset, how many
// reset or verification mails others had asked for an address, and how long ago.
t.test('a budget per address shows its state to no one: a stranger learns nothing of what others asked for it', async t => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_MAIL_ACCOUNT: '3/900' } })
  const forgot = (email: string, remoteAddress: string) => app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email }, remoteAddress })
  const register = (email: string, remoteAddress: string) => app.inject({ method: 'POST', url: '/auth/register', payload: { ...newAccount(), email }, remoteAddress })
  const owner = await registerAccount(app)
  await forgot(owner.email, '198.51.100.20')
  await forgot(owner.email, '198.51.100.20')
  const headersOf = (answer: { headers: Record<string, unknown> }) => ({ limit: answer.headers['x-ratelimit-limit'], remaining: answer.headers['x-ratelimit-remaining'], reset: answer.headers['x-ratelimit-reset'] })
  t.same(headersOf(await forgot(owner.email, '203.0.113.7')), headersOf(await forgot('never.seen@example.org', '203.0.113.8')), 'forgot: the same headers as for an address nobody asked for')
  t.same(headersOf(await register(owner.email, '203.0.113.9')), headersOf(await register('fresh@example.org', '203.0.113.10')), 'registration: likewise')
  const spent = await forgot(owner.email, '203.0.113.11')
  t.equal(spent.statusCode, 429, 'a spent budget still refuses')
  t.ok(Number(spent.headers['retry-after']) > 0, 'with the wait')
  t.not(spent.headers['x-ratelimit-remaining'], '0', 'the headers are the caller\'s own budget\'s, which has room')
})
