// POST /auth/register: the contract, its audit entry, bad input that changes nothing, and concurrent duplicates.
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { statementsDuring } from '../helpers/statements.js'
import { newAccount } from '../helpers/users.js'

// No poll during a test: the statements a registration's mail takes are counted below.
// No poll nor settings refresh during a test that counts the statements sent (regression: a
// refresh of the settings landed in one on a loaded machine).
const { app, prisma, pool, clock } = await buildTestApp(t, { env: { MAIL_POLL_SECONDS: '300', SETTINGS_REFRESH_SECONDS: '300' } })

const register = (payload: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/auth/register', payload: payload as object, headers })

t.test('creates the user and the profile, and does not log in', async t => {
  const account = { ...newAccount(), displayName: 'Ada Lovelace' }
  const response = await register(account)
  t.equal(response.statusCode, 201)
  t.same(response.cookies, [], 'no cookies')
  const body = response.json()
  t.same(Object.keys(body), ['user'], 'only the user, no tokens')
  t.match(body.user, {
    email: account.email,
    username: account.username,
    role: 'user',
    emailVerified: false,
    pendingEmail: null,
    profile: { displayName: 'Ada Lovelace', bio: null, avatarUrl: null }
  })
  t.match(body.user.id, /^[0-9a-f-]{36}$/)
  t.notOk('passwordHash' in body.user, 'the hash never leaves')
  t.equal(response.headers['cache-control'], 'no-store')
  const row = await prisma.user.findUniqueOrThrow({ where: { id: body.user.id }, include: { profile: true } })
  t.match(row.passwordHash, /^\$argon2id\$/)
  t.equal(row.profile?.displayName, 'Ada Lovelace')
})

t.test('emails and usernames are unique case-insensitively', async t => {
  const account = newAccount()
  t.equal((await register(account)).statusCode, 201)
  const sameEmail = await register({ ...newAccount(), email: account.email.toUpperCase() })
  t.equal(sameEmail.statusCode, 409)
  t.same(sameEmail.json(), { statusCode: 409, code: 'USER_EXISTS', error: 'Conflict', message: 'An account with this email or username already exists' })
  const sameUsername = await register({ ...newAccount(), username: account.username.toUpperCase() })
  t.equal(sameUsername.json().code, 'USER_EXISTS')
  t.equal(await prisma.user.count({ where: { email: account.email } }), 1)
})

t.test('stores the canonical lower-case form', async t => {
  const account = newAccount()
  const response = await register({ ...account, email: account.email.toUpperCase(), username: account.username.toUpperCase() })
  t.equal(response.json().user.email, account.email)
  t.equal(response.json().user.username, account.username)
})

t.test('two concurrent registrations of one email: one 201, one 409, never a 500', async t => {
  for (let round = 0; round < 3; round++) {
    const account = newAccount()
    const responses = await Promise.all([register(account), register({ ...account, username: undefined, email: account.email.toUpperCase() })])
    t.same(responses.map(r => r.statusCode).sort(), [201, 409])
    t.equal(await prisma.user.count({ where: { email: account.email } }), 1)
    t.equal(await prisma.profile.count({ where: { user: { email: account.email } } }), 1)
    t.equal(await prisma.oneTimeToken.count({ where: { email: account.email } }), 1, 'one verification token: the refused registration wrote nothing')
  }
})

t.test('a registration is written whole: the user, the profile and the verification token, with one time', async t => {
  const account = { ...newAccount(), displayName: 'Grace Hopper' }
  const { user } = (await register(account)).json()
  const row = await prisma.user.findUniqueOrThrow({ where: { id: user.id }, include: { profile: true, tokens: true } })
  t.equal(row.createdAt.toISOString(), user.createdAt, 'the answer shows what was stored')
  t.equal(row.updatedAt.toISOString(), user.updatedAt)
  t.match(row, { role: 'user', emailVerifiedAt: null, isActive: true, profile: { displayName: 'Grace Hopper', bio: null } })
  t.equal(row.tokens.length, 1)
  t.match(row.tokens[0], { purpose: 'email_verify', email: account.email, usedAt: null })
  t.ok((row.tokens[0]?.expiresAt ?? 0) > row.createdAt, 'the token expires later')
})

t.test('a registration is audited as user.registered, with the account, by the new user; a refused one writes nothing', async t => {
  const registered = async () => await prisma.auditEvent.count({ where: { action: 'user.registered' } })
  const before = await registered()
  const account = newAccount()
  const { user } = (await register(account)).json()
  const row = await prisma.user.findUniqueOrThrow({ where: { id: user.id }, select: { createdAt: true } })
  const entries = await prisma.auditEvent.findMany({ where: { subjectId: user.id }, select: { action: true, actorId: true, subjectId: true, ip: true, details: true, createdAt: true } })
  t.same(entries, [{ action: 'user.registered', actorId: user.id, subjectId: user.id, ip: '127.0.0.1', details: {}, createdAt: row.createdAt }])
  t.equal((await register({ ...newAccount(), email: account.email })).statusCode, 409)
  t.equal((await register({ ...newAccount(), password: 'password123' })).statusCode, 400)
  t.equal(await registered(), before + 1, 'a taken address or a refused password: no entry')
})

t.test('a registration and its mail take three statements: the account, the claim and the removal', async t => {
  await app.mailer.flush()
  const account = newAccount()
  const names = await statementsDuring(pool, async () => {
    t.equal((await register(account)).statusCode, 201)
    await app.mailer.flush()
  })
  // The last claim is the flush's own pass; the registration's pass ended at its short batch.
  t.same(names, ['users.insert_with_token', 'outbox.claim', 'outbox.remove', 'outbox.claim'], 'each a named statement, and no empty claim after a short batch')
  t.equal(await prisma.outboxMail.count({ where: { recipient: account.email } }), 0, 'the mail left')
})

t.test('the account is stamped by the service clock, not the machine clock', async t => {
  const day = 24 * 3600
  clock.advance(-day)
  t.teardown(() => { clock.advance(day) })
  const before = clock.now().getTime()
  const { user } = (await register(newAccount())).json()
  const createdAt = Date.parse(user.createdAt)
  t.ok(createdAt >= before && createdAt <= clock.now().getTime(), 'createdAt is a day back, with the clock')
})

t.test('bad input answers 400 in the documented shape and creates nothing', async t => {
  const good = newAccount()
  const cases: Array<[string, unknown]> = [
    ['missing email', { password: good.password }],
    ['missing password', { email: good.email }],
    ['unknown property', { ...good, role: 'admin' }],
    ['mistyped email', { ...good, email: 42 }],
    ['mistyped password', { ...good, password: 12345678901 }],
    ['empty email', { ...good, email: '' }],
    ['invalid email', { ...good, email: 'not-an-email' }],
    ['email with spaces', { ...good, email: ` ${good.email}` }],
    ['look-alike (Cyrillic a) email', { ...good, email: good.email.replace('user', 'usеr') }],
    ['10 kB email', { ...good, email: `${'a'.repeat(10_000)}@example.com` }],
    ['local part over 64 characters', { ...good, email: `${'a'.repeat(65)}@example.com` }],
    ['an IP address for a domain', { ...good, email: 'ada@127.0.0.1' }],
    ['a numeric top-level label', { ...good, email: 'ada@example.123' }],
    ['an IP address spelt in hexadecimal', { ...good, email: 'ada@10.0.0.0x5' }],
    ['an IP address in hexadecimal parts', { ...good, email: 'ada@0x7f.0x0.0x0.0x1' }],
    ['password below the minimum', { ...good, password: 'short1!' }],
    ['password above the maximum', { ...good, password: 'x'.repeat(257) }],
    ['10 kB password', { ...good, password: 'x'.repeat(10_000) }],
    ['username with @', { ...good, username: 'ada@home' }],
    ['username too short', { ...good, username: 'ab' }],
    ['look-alike (Cyrillic a) username', { ...good, username: 'аda_lovelace' }],
    ['empty displayName', { ...good, displayName: '' }],
    ['null body field', { ...good, username: null }],
    ['JSON array', [good]],
    ['JSON string', 'hello'],
    ['JSON null', null]
  ]
  for (const [name, payload] of cases) {
    const response = await app.inject({ method: 'POST', url: '/auth/register', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(payload) })
    t.equal(response.statusCode, 400, name)
    t.match(response.json(), { statusCode: 400, code: 'VALIDATION_FAILED', error: 'Bad Request', message: /^The request is invalid: / }, name)
  }
  t.equal(await prisma.user.count({ where: { email: good.email } }), 0, 'nothing created')
})

t.test('a common password is refused with its own code', async t => {
  for (const password of ['password123', 'Password123', 'qwertyuiop']) {
    const response = await register({ ...newAccount(), password })
    t.equal(response.statusCode, 400, password)
    t.equal(response.json().code, 'PASSWORD_TOO_WEAK', password)
  }
  const account = newAccount()
  const sameAsEmail = await register({ ...account, password: account.email })
  t.equal(sameAsEmail.json().code, 'PASSWORD_TOO_WEAK', 'password equal to the email')
})

// Regression: only the list's exact entries were refused.
t.test('a common password dressed up with digits, symbols or look-alikes, a repeated character, or the address\'s own name is refused too', async t => {
  for (const password of ['Summer2023!', 'P@ssword1', 'Monkey123!', 'aaaaaaaa']) {
    const response = await register({ ...newAccount(), password })
    t.equal(response.json().code, 'PASSWORD_TOO_WEAK', password)
  }
  const account = newAccount()
  const ownName = await register({ ...account, password: `${account.email.split('@')[0] ?? ''}2024!` })
  t.equal(ownName.json().code, 'PASSWORD_TOO_WEAK', 'the email\'s local part with a year')
  t.equal(await prisma.user.count({ where: { email: account.email } }), 0, 'nothing created')
})

t.test('the length counts the password as hashed: combining marks do not stretch a short one (regression: 4 characters passed)', async t => {
  // Eight code points as typed (each vowel, then its accent), four once normalised to NFC.
  const account = newAccount()
  const response = await register({ ...account, password: 'a\u0301e\u0301i\u0301o\u0301' })
  t.equal(response.statusCode, 400)
  t.equal(response.json().code, 'PASSWORD_TOO_WEAK')
  t.match(response.json().message, /too short/, 'the message names the reason (regression: "too common")')
  t.equal(await prisma.user.count({ where: { email: account.email } }), 0, 'nothing created')
  const composedLongEnough = await register({ ...newAccount(), password: 'a\u0301e\u0301i\u0301o\u0301u\u0301y\u0301a\u0301e\u0301' })
  t.equal(composedLongEnough.statusCode, 201, 'eight characters once normalised')
})

t.test('a common password typed in full-width letters is still common (regression: it passed the list)', async t => {
  for (const password of ['\uff30\uff41\uff53\uff53\uff57\uff4f\uff52\uff44\uff11\uff12\uff13', '\uff31\uff37\uff25\uff32\uff34\uff39\uff35\uff29\uff2f\uff30']) {
    const account = newAccount()
    const response = await register({ ...account, password })
    t.equal(response.json().code, 'PASSWORD_TOO_WEAK', password)
    t.equal(await prisma.user.count({ where: { email: account.email } }), 0, 'nothing created')
  }
})

t.test('the maximum counts the password as hashed: one typed decomposed is the same password (regression: its login was refused)', async t => {
  // 150 Korean syllables: 150 characters in NFC, 380 as a keyboard that decomposes types them.
  const syllables = Array.from({ length: 150 }, (_, i) => String.fromCodePoint(0xac00 + i * 67)).join('')
  const decomposed = syllables.normalize('NFD')
  t.ok([...decomposed].length > 256, 'longer than PASSWORD_MAX_LENGTH as typed')
  const account = { ...newAccount(), password: syllables }
  t.equal((await register(account)).statusCode, 201)
  for (const [form, password] of [['composed', syllables], ['decomposed', decomposed]]) {
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password } })
    t.equal(login.statusCode, 200, `the login typed ${form}`)
  }
  const typedDecomposed = { ...newAccount(), password: decomposed }
  t.equal((await register(typedDecomposed)).statusCode, 201, 'registered as typed decomposed')
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: typedDecomposed.email, password: syllables } })
  t.equal(login.statusCode, 200, 'and logs in composed')

  const tooLong = { ...newAccount(), password: 'x'.repeat(200) + 'e\u0301'.repeat(57) }
  const refused = await register(tooLong)
  t.equal(refused.statusCode, 400, '257 characters once normalised')
  t.match(refused.json(), { code: 'VALIDATION_FAILED', message: /at most 256 characters once normalised/ })
  t.equal(await prisma.user.count({ where: { email: tooLong.email } }), 0, 'nothing created')
  const overTyped = await register({ ...newAccount(), password: 'e\u0301'.repeat(513) })
  t.equal(overTyped.json().code, 'VALIDATION_FAILED', 'more than four times the maximum as typed')
})

t.test('a username kept for the operator is refused as one in use, however it is spelt (regression: anyone could be "admin")', async t => {
  for (const username of ['admin', 'Administrator', 'sys-admin', 'Sup.port', 'r_o_o_t']) {
    const account = { ...newAccount(), username }
    const response = await register(account)
    t.equal(response.statusCode, 409, username)
    t.equal(response.json().code, 'USER_EXISTS', username)
    t.equal(await prisma.user.count({ where: { email: account.email } }), 0, 'nothing created')
  }
  t.equal((await register({ ...newAccount(), username: 'admiral' })).statusCode, 201, 'a name that only begins like one is free')
})

// Regression: only whole names were kept, as spelt, so "admin1", "support-team" and "adm1n" passed for staff.
t.test('a name that begins or ends with a staff word, or spells a kept one with look-alikes, is kept too; one that holds it inside is free', async t => {
  for (const username of ['admin1', 'Admin_2024', 'support-team', 'TheAdmin', 'web.admin', 'security_desk', 'moderator7', 'unofficial', 'adm1n', 'admln', 'r00t', 'supp0rt', 'securlty', 'administrat0r', 'n0b0dy', 'theadmin1', 'sysadmin7', 'myhelpdesk0', 'teamsupport5', '1admin',
    'theadm1n1', 'web.adm1n1', 'websupp0rt1', 'mys3curity1', '1adm1nteam', 'sysadm1n0', 'adrnin', 'rnoderator', 'he1pdesk-team', 'the0fficia1', 'adr5nin']) {
    const response = await register({ ...newAccount(), username })
    t.equal(response.statusCode, 409, username)
    t.equal(response.json().code, 'USER_EXISTS', username)
  }
  for (const username of ['badminton', 'me2', 'supply-team', 'helpful', 'lisa1', 'r00ts', 'elliot']) {
    t.equal((await register({ ...newAccount(), username })).statusCode, 201, username)
  }
})

t.test('any unicode password of allowed length is accepted', async t => {
  const response = await register({ ...newAccount(), password: 'мой пароль 🔐 très long' })
  t.equal(response.statusCode, 201)
})

t.test('only JSON is accepted', async t => {
  const account = newAccount()
  const form = await app.inject({ method: 'POST', url: '/auth/register', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `email=${account.email}&password=x` })
  t.equal(form.statusCode, 415)
  // The catalogue's messages alone (regression: Fastify's own words were appended to them).
  t.same(form.json(), { statusCode: 415, code: 'UNSUPPORTED_MEDIA_TYPE', error: 'Unsupported Media Type', message: 'Send the request body as application/json, without a Content-Encoding or a Transfer-Encoding but chunked' })
  const text = await app.inject({ method: 'POST', url: '/auth/register', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify(account) })
  t.equal(text.statusCode, 415)
  const malformed = await app.inject({ method: 'POST', url: '/auth/register', headers: { 'content-type': 'application/json' }, payload: '{"email": ' })
  t.equal(malformed.statusCode, 400)
  t.same(malformed.json(), { statusCode: 400, code: 'INVALID_JSON', error: 'Bad Request', message: 'The request body is not valid JSON' })
  const empty = await app.inject({ method: 'POST', url: '/auth/register', headers: { 'content-type': 'application/json' }, payload: '' })
  t.equal(empty.json().code, 'INVALID_JSON')
  const polluted = await app.inject({ method: 'POST', url: '/auth/register', headers: { 'content-type': 'application/json' }, payload: `{"email":"${account.email}","password":"${account.password}","__proto__":{"role":"admin"}}` })
  t.equal(polluted.statusCode, 400)
  t.equal(await prisma.user.count({ where: { email: account.email } }), 0)
})
