// The owner is mailed of a sign-in from a device the account does not know, or after failed attempts (ASVS 6.3.5); a device is known by its device token (a cookie, or an app's `deviceToken`).
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { startMailServer, type MailServer } from '../helpers/mail.js'
import { loginAsAdmin } from '../helpers/admin.js'
import { loginStatement, racedWhileHeld, whileHeld } from '../helpers/locks.js'
import { enrolTotp, nextCode, startLogin } from '../helpers/mfa.js'
import { registerPasskey } from '../helpers/passkeys.js'
import { until } from '../helpers/until.js'
import { registerAccount, registerProvenAccount, type Account } from '../helpers/users.js'

const SUBJECT = /^New sign-in to your account$/
const FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0'
const DEVICE_COOKIE = '__Host-auth_device'

const mail = await startMailServer(t)
// The backoff's free tries are the failures that make a sign-in worth telling of (the tests' default is 50).
const { app, prisma, pool, clock, database } = await buildTestApp(t, { env: { SMTP_URL: mail.url, LOGIN_BACKOFF_AFTER_FAILURES: '5' } })
const onServer = { skip: database.poolSize === 1 && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }

/** A browser's sign-in: the device cookie it sends (if any), and the one it is given back. */
async function browserLogin (account: Pick<Account, 'email' | 'password'>, deviceCookie?: string, userAgent = FIREFOX) {
  const response = await app.inject({
    method: 'POST',
    url: '/auth/login',
    headers: { 'sec-fetch-site': 'same-origin', 'user-agent': userAgent, ...(deviceCookie === undefined ? {} : { cookie: `${DEVICE_COOKIE}=${deviceCookie}` }) },
    payload: { email: account.email, password: account.password }
  })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  const cookie = response.cookies.find(c => c.name === DEVICE_COOKIE)
  if (cookie === undefined) throw new Error('no device cookie')
  return { response, device: cookie.value, cookie }
}

/** An app's sign-in, tokens in the body, with the device token it kept (if any). */
async function appLogin (account: Pick<Account, 'email' | 'password'>, deviceToken?: string, userAgent?: string) {
  const response = await app.inject({ method: 'POST', url: '/auth/login', headers: userAgent === undefined ? {} : { 'user-agent': userAgent }, payload: { email: account.email, password: account.password, ...(deviceToken === undefined ? {} : { deviceToken }) } })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  return response.json() as { sessionId: string, accessToken: string, refreshToken: string, deviceToken: string }
}

const noticesQueued = async (email: string) => await prisma.outboxMail.count({ where: { recipient: email, kind: 'new_sign_in' } })
/** Delivers the mails due, then how many notices `email` received and nobody took yet. */
async function noticesReceived (mailbox: MailServer, email: string): Promise<number> {
  await app.mailer.flush()
  return mailbox.untaken(email).filter(m => SUBJECT.test(m.subject)).length
}
const lastLogin = async (userId: string) => (await prisma.auditEvent.findFirstOrThrow({ where: { subjectId: userId, action: 'login.succeeded' }, orderBy: { createdAt: 'desc' } })).details

/** A time as the notices write it, to the minute. */
const minuteOf = (date: Date) => date.toISOString().slice(0, 16).replace('T', ' ')

t.test('a browser: its first sign-in is told to nobody, a sign-in from another browser is, and the activity shows it', async t => {
  const account = await registerProvenAccount(app, prisma)
  const first = await browserLogin(account)
  t.match(first.device, /^[A-Za-z0-9_-]{43}$/, 'the browser is handed a device token')
  t.match(first.cookie, { httpOnly: true, secure: true, path: '/', sameSite: 'Lax', maxAge: 400 * 86_400 }, 'for as long as a browser keeps a cookie')
  await browserLogin(account, first.device)
  t.equal(await noticesReceived(mail, account.email), 0, 'the account\'s first sign-in, and the same browser again: no mail')

  // The minute it is stamped with: the clock's before or after it (it may cross into the next).
  const before = minuteOf(clock.now())
  const other = await browserLogin(account)
  const after = minuteOf(clock.now())
  t.not(other.device, first.device)
  const notice = await mail.nextMail(account.email, { subject: SUBJECT })
  t.ok([before, after].some(minute => notice.text.includes(`Your account was signed in to at ${minute} UTC, from a device or browser it had not been used on lately: Firefox on Windows, from the address 127.0.0.1.`)), notice.text)
  t.match(notice.text, /If not, someone knows your password: change it now/)
  t.notMatch(notice.text, /failed/)

  const activity = (await app.inject({ method: 'GET', url: '/users/me/activity', headers: { authorization: `Bearer ${(await appLogin(account, first.device)).accessToken}` } })).json()
  const logins = activity.items.filter((item: { action: string }) => item.action === 'login.succeeded')
  t.match(logins[1], { by: 'self', ip: '127.0.0.1', details: { newDevice: true, noticed: true } }, 'the sign-in from the other browser')
  t.notOk('newDevice' in logins[0].details, 'a known device is not marked')
})

t.test('the device cookie outlives a sign-out; a malformed one is replaced', async t => {
  const account = await registerProvenAccount(app, prisma)
  const { device, response } = await browserLogin(account)
  const cookies = response.cookies.map(c => `${c.name}=${c.value}`).join('; ')
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: cookies, 'sec-fetch-site': 'same-origin' } })
  t.equal(logout.statusCode, 204)
  t.notOk(logout.cookies.some(c => c.name === DEVICE_COOKIE), 'a sign-out leaves the device cookie')
  await browserLogin(account, device)
  const replaced = await browserLogin(account, 'not a token')
  t.match(replaced.device, /^[A-Za-z0-9_-]{43}$/)
  t.equal(await noticesReceived(mail, account.email), 1, 'a cookie not of ours is a new device')
  await mail.nextMail(account.email, { subject: SUBJECT })
})

t.test('an app: the device token comes in the body and goes back in it; a malformed one is refused', async t => {
  const account = await registerProvenAccount(app, prisma)
  const first = await appLogin(account)
  t.match(first.deviceToken, /^[A-Za-z0-9_-]{43}$/)
  const again = await appLogin(account, first.deviceToken)
  t.equal(again.deviceToken, first.deviceToken, 'the token sent is answered back')
  t.equal(await noticesReceived(mail, account.email), 0)
  const refused = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password, deviceToken: 'x'.repeat(44) } })
  t.equal(refused.statusCode, 400)
  t.match(refused.json(), { code: 'VALIDATION_FAILED', message: /deviceToken/ })
  const cookieAsked = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password, deviceToken: first.deviceToken, transport: 'cookie' } })
  t.equal(cookieAsked.cookies.find(c => c.name === DEVICE_COOKIE)?.value, first.deviceToken, 'asking for cookies, the body\'s token goes into the cookie')
  t.notOk('deviceToken' in cookieAsked.json())
  t.equal(await noticesReceived(mail, account.email), 0)
})

t.test('a sign-in after failed attempts is told, even from a known device', async t => {
  const account = await registerProvenAccount(app, prisma)
  const { deviceToken } = await appLogin(account)
  for (let i = 0; i < 5; i++) {
    const wrong = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: 'not the password at all', deviceToken } })
    t.equal(wrong.statusCode, 401)
  }
  clock.advance(31)
  await appLogin(account, deviceToken)
  const notice = await mail.nextMail(account.email, { subject: SUBJECT })
  t.match(notice.text, /UTC, after 5 failed attempts: an app or a browser, from the address 127\.0\.0\.1\./)
  t.match(await lastLogin(account.user.id), { failedAttempts: 5, noticed: true })

  await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: 'not the password at all', deviceToken } })
  clock.advance(16 * 60)
  await appLogin(account, deviceToken)
  t.equal(await noticesReceived(mail, account.email), 0, 'one failed attempt is no reason to mail')
  t.match(await lastLogin(account.user.id), { failedAttempts: 1 })
})

// Regression: a sign-in that shared a waiting mail was named in none, and its session, kept alive
// by refreshes, was never told of.
t.test('a quarter of an hour between mails: the sign-ins meanwhile wait in turn, each mailed about itself, four at most', async t => {
  const account = await registerProvenAccount(app, prisma)
  await appLogin(account)
  // The minutes each sign-in may be stamped with: the clock read before it and after it (one
  // taken once and offset crossed into the next minute now and then: a flaky test).
  const minutes: string[][] = []
  const stampedAt = (text: string, i: number) => (minutes[i] ?? []).some(minute => text.includes(`at ${minute} UTC`))
  await appLogin(account)
  t.equal(await noticesReceived(mail, account.email), 1, 'a new device: mailed at once')
  await mail.nextMail(account.email, { subject: SUBJECT })
  const waiting = []
  for (let i = 1; i <= 4; i++) {
    clock.advance(60)
    const before = minuteOf(clock.now())
    waiting.push(await appLogin(account, undefined, i === 3 ? FIREFOX : undefined))
    minutes[i] = [before, minuteOf(clock.now())]
    t.match(await lastLogin(account.user.id), { newDevice: true, noticed: true }, `the sign-in ${i} minutes on: its mail waits`)
  }
  clock.advance(60)
  const beyond = await appLogin(account)
  t.notOk('noticed' in (await lastLogin(account.user.id) as object), 'a fifth, past the mails that may wait: none')
  t.equal(await noticesReceived(mail, account.email), 0, 'within the quarter, nothing yet')
  clock.advance(10 * 60)
  t.equal(await noticesReceived(mail, account.email), 1, 'at the quarter\'s end, the first that waited')
  t.ok(stampedAt((await mail.nextMail(account.email, { subject: SUBJECT })).text, 1), 'about the first sign-in that waited')
  clock.advance(45 * 60)
  t.equal(await noticesReceived(mail, account.email), 3, 'the others, a quarter apart')
  const texts = mail.untaken(account.email).filter(m => SUBJECT.test(m.subject)).map(m => m.text)
  for (let i = 0; i < texts.length; i++) await mail.nextMail(account.email, { subject: SUBJECT })
  t.ok(texts.some(text => stampedAt(text, 3) && text.includes('Firefox on Windows')), 'each about its own sign-in')
  clock.advance(15 * 60)
  await appLogin(account, waiting[0]?.deviceToken)
  t.equal(await noticesReceived(mail, account.email), 0, 'a device told of is known')
  await appLogin(account, beyond.deviceToken)
  t.match(await lastLogin(account.user.id), { newDevice: true, noticed: true }, 'the one past them, never told of, is new again')
  t.equal(await noticesReceived(mail, account.email), 1)
  await mail.nextMail(account.email, { subject: SUBJECT })
})

// Regression: the sign-in of an instance whose clock read earlier than another's mail was taken
// for sharing a waiting mail, and mailed nobody.
t.test('sign-ins on two instances whose clocks differ are each mailed', onServer, async t => {
  const other = await buildTestApp(t, { database, env: { SMTP_URL: mail.url, LOGIN_BACKOFF_AFTER_FAILURES: '5' } })
  other.clock.advance((clock.now().getTime() - other.clock.now().getTime()) / 1000 - 0.2)
  const account = await registerProvenAccount(app, prisma)
  await appLogin(account)
  await appLogin(account)
  const behind = await other.app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } })
  t.equal(behind.statusCode, 200)
  t.match(await lastLogin(account.user.id), { newDevice: true, noticed: true }, 'the instance behind queues its own')
  clock.advance(16 * 60)
  t.equal(await noticesReceived(mail, account.email), 2)
  await mail.nextMail(account.email, { subject: SUBJECT })
  await mail.nextMail(account.email, { subject: SUBJECT })
})

// Regression: a session that vouched for nothing had no hash, so its end as not the owner's
// could not forget the device on its other sessions, which vouched on.
t.test('ending a session that vouched for nothing still forgets its device', async t => {
  const account = await registerProvenAccount(app, prisma)
  const owner = await appLogin(account)
  for (let i = 0; i < 5; i++) {
    clock.advance(60)
    await appLogin(account)
  }
  clock.advance(60)
  const quiet = await appLogin(account)
  t.notOk('noticed' in (await lastLogin(account.user.id) as object), 'past the mails that may wait')
  clock.advance(75 * 60)
  t.equal(await noticesReceived(mail, account.email), 5, 'the first and the four that waited')
  for (let i = 0; i < 5; i++) await mail.nextMail(account.email, { subject: SUBJECT })
  const known = await appLogin(account, quiet.deviceToken)
  t.match(await lastLogin(account.user.id), { noticed: true }, 'told of at its next sign-in')
  await mail.nextMail(account.email, { subject: SUBJECT })
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${known.accessToken}` } })).statusCode, 204)
  t.equal((await app.inject({ method: 'DELETE', url: `/auth/sessions/${quiet.sessionId}`, headers: { authorization: `Bearer ${owner.accessToken}` } })).statusCode, 204)
  clock.advance(16 * 60)
  await appLogin(account, quiet.deviceToken)
  t.match(await lastLogin(account.user.id), { newDevice: true, noticed: true }, 'the device is told of again')
  await mail.nextMail(account.email, { subject: SUBJECT })
})

// Regression: each read the audit trail as it was before the other committed, and each mailed.
t.test('sign-ins at once from new devices send one mail', onServer, async t => {
  const account = await registerProvenAccount(app, prisma)
  await appLogin(account)
  const login = (who: object) => async () => await app.inject({ method: 'POST', url: '/auth/login', payload: { ...who, password: account.password } })
  // By address and by name: one instance runs one check per identifier at a time, not per account.
  const answers = await racedWhileHeld(database.url, pool, {
    hold: async holder => await holder.query('SELECT 1 FROM "User" WHERE id = $1::uuid FOR NO KEY UPDATE', [account.user.id]),
    waitingStatement: loginStatement
  }, login({ email: account.email }), login({ username: account.username }))
  t.same(answers.map(answer => answer.statusCode), [200, 200])
  t.equal(await noticesReceived(mail, account.email), 1, 'one now')
  await mail.nextMail(account.email, { subject: SUBJECT })
  t.equal(await prisma.outboxMail.count({ where: { recipient: account.email, kind: 'new_sign_in', nextAttemptAt: { gt: clock.now() } } }), 1, 'the other at the quarter\'s end')
})

t.test('a remedy forgets the devices: a sign-out everywhere, a session ended as not the owner\'s', async t => {
  const account = await registerProvenAccount(app, prisma)
  const owner = await appLogin(account)
  const intruder = await appLogin(account)
  await mail.nextMail(account.email, { subject: SUBJECT })
  const headers = { authorization: `Bearer ${owner.accessToken}` }
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers })).statusCode, 204)
  clock.advance(16 * 60)
  const again = await appLogin(account, intruder.deviceToken)
  t.ok(await mail.nextMail(account.email, { subject: SUBJECT }), 'the intruder\'s device, known before, is told again')

  const kept = await appLogin(account, owner.deviceToken)
  const ended = await app.inject({ method: 'DELETE', url: `/auth/sessions/${again.sessionId}`, headers: { authorization: `Bearer ${kept.accessToken}` } })
  t.equal(ended.statusCode, 204, 'the owner ends the intruder\'s session from the list')
  clock.advance(16 * 60)
  await appLogin(account, intruder.deviceToken)
  t.match(await lastLogin(account.user.id), { newDevice: true, noticed: true })
  t.ok(await mail.nextMail(account.email, { subject: SUBJECT }), 'a device whose session the owner ended is told again')
})

// Regression: only the session ended forgot its device; another of the device, signed out
// before and so not in the owner's list, still vouched for it.
t.test('a session ended as not the owner\'s takes its device\'s standing from the account\'s other sessions of it', async t => {
  const account = await registerProvenAccount(app, prisma)
  const owner = await appLogin(account)
  const intruder = await appLogin(account)
  await mail.nextMail(account.email, { subject: SUBJECT })
  const hidden = await appLogin(account, intruder.deviceToken)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${hidden.accessToken}` } })).statusCode, 204)
  const ended = await app.inject({ method: 'DELETE', url: `/auth/sessions/${intruder.sessionId}`, headers: { authorization: `Bearer ${owner.accessToken}` } })
  t.equal(ended.statusCode, 204)
  clock.advance(16 * 60)
  await appLogin(account, intruder.deviceToken)
  t.match(await lastLogin(account.user.id), { newDevice: true, noticed: true })
  t.ok(await mail.nextMail(account.email, { subject: SUBJECT }), 'told again')
  await appLogin(account, owner.deviceToken)
  t.equal(await noticesReceived(mail, account.email), 0, 'the owner\'s device is still known')
})

// Regression: a login waiting for the user's row while the owner ended the intruder's session
// read it as live (its snapshot was older), kept the device as known, and its own new session
// vouched for the device on: every later sign-in from it went untold.
t.test('a sign-in racing the owner\'s end of the intruder\'s session leaves the device to be told', onServer, async t => {
  const account = await registerProvenAccount(app, prisma)
  const owner = await appLogin(account)
  const intruder = await appLogin(account)
  await mail.nextMail(account.email, { subject: SUBJECT })
  clock.advance(16 * 60)
  let ended: Promise<{ statusCode: number }> | undefined
  const raced = await whileHeld(database.url, pool, {
    hold: async holder => await holder.query('SELECT 1 FROM "User" WHERE id = $1::uuid FOR NO KEY UPDATE', [account.user.id]),
    waitingStatement: loginStatement,
    meanwhile: async () => {
      ended = app.inject({ method: 'DELETE', url: `/auth/sessions/${intruder.sessionId}`, headers: { authorization: `Bearer ${owner.accessToken}` } })
      await new Promise(resolve => setTimeout(resolve, 300))
    }
  }, async () => await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password, deviceToken: intruder.deviceToken } }))
  t.equal((await ended)?.statusCode, 204)
  t.equal(raced.statusCode, 200, 'the sign-in came first: the owner\'s end waited for it')
  clock.advance(16 * 60)
  await appLogin(account, intruder.deviceToken)
  t.match(await lastLogin(account.user.id), { newDevice: true, noticed: true })
  t.ok(await mail.nextMail(account.email, { subject: SUBJECT }), 'the device is told after the owner acted')
})

// Regression: two reused refresh tokens of one device's sessions, each end holding its own
// session and forgetting the device on the other's, deadlocked: one answered 503 and its
// session lived on.
t.test('reused refresh tokens of two sessions of one device at once end both', onServer, async t => {
  const account = await registerProvenAccount(app, prisma)
  const first = await appLogin(account)
  const second = await appLogin(account, first.deviceToken)
  const refreshed = async (refreshToken: string) => await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken } })
  const retired = [first.refreshToken, second.refreshToken]
  for (const token of retired) t.equal((await refreshed(token)).statusCode, 200)
  clock.advance(120)
  const sessions = [first.sessionId, second.sessionId]
  const answers = await racedWhileHeld(database.url, pool, {
    hold: async holder => await holder.query('SELECT 1 FROM "Session" WHERE id = ANY($1::uuid[]) FOR UPDATE', [sessions]),
    // Each refresh finds its token retired and waits to end its session.
    waitingStatement: '%UPDATE "public"."Session" SET "revokedAt"%'
  }, async () => await refreshed(retired[0] ?? ''), async () => await refreshed(retired[1] ?? ''))
  t.same(answers.map(answer => answer.json().code), ['AUTH_REFRESH_REUSED', 'AUTH_REFRESH_REUSED'])
  t.same((await prisma.session.findMany({ where: { id: { in: sessions } }, select: { revokedReason: true } })).map(row => row.revokedReason), ['refresh_reuse', 'refresh_reuse'])
})

// Regression: the mail went to the address as the login's snapshot had it, from before it waited for the row.
t.test('a sign-in that waited while the address changed mails the new address', onServer, async t => {
  const account = await registerProvenAccount(app, prisma)
  await appLogin(account)
  const moved = `moved-${account.email}`
  const answer = await whileHeld(database.url, pool, {
    hold: async holder => await holder.query('SELECT 1 FROM "User" WHERE id = $1::uuid FOR NO KEY UPDATE', [account.user.id]),
    waitingStatement: loginStatement,
    meanwhile: async holder => await holder.query('UPDATE "User" SET email = $2 WHERE id = $1::uuid', [account.user.id, moved])
  }, async () => await app.inject({ method: 'POST', url: '/auth/login', payload: { username: account.username, password: account.password } }))
  t.equal(answer.statusCode, 200)
  t.ok(await mail.nextMail(moved, { subject: SUBJECT }))
  t.equal(await noticesReceived(mail, account.email), 0, 'none to the address it left')
})

// Regression: the quarter of an hour since the first mail was not over when the owner acted,
// and the intruder's sign-in minutes later went untold; its session vouched for the device on,
// and a session kept alive by refreshes was never told of.
t.test('an intruder back within the quarter after the owner acted is mailed at its end, refreshes or not', async t => {
  for (const remedy of ['the session ended', 'a sign-out everywhere'] as const) {
    const account = await registerProvenAccount(app, prisma)
    const owner = await appLogin(account)
    const intruder = await appLogin(account)
    await mail.nextMail(account.email, { subject: SUBJECT })
    clock.advance(60)
    const headers = { authorization: `Bearer ${owner.accessToken}` }
    const acted = remedy === 'the session ended'
      ? await app.inject({ method: 'DELETE', url: `/auth/sessions/${intruder.sessionId}`, headers })
      : await app.inject({ method: 'POST', url: '/auth/logout-all', headers })
    t.equal(acted.statusCode, 204, remedy)
    clock.advance(60)
    const back = await appLogin(account, intruder.deviceToken)
    t.match(await lastLogin(account.user.id), { newDevice: true, noticed: true }, `${remedy}: the sign-in after it is marked in the activity at once`)
    t.equal(await noticesReceived(mail, account.email), 0, `${remedy}: within the quarter, not yet mailed`)
    clock.advance(14 * 60)
    const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: back.refreshToken } })
    t.equal(refreshed.statusCode, 200, `${remedy}: the intruder only refreshes`)
    t.equal(await noticesReceived(mail, account.email), 1, `${remedy}: mailed at the quarter's end`)
    await mail.nextMail(account.email, { subject: SUBJECT })
  }
})

// Regression (with the one above): a second step met as the owner ended another session
// opened no session then, and was sent again: it must not vouch for a device the owner's act
// forgot. It opens its session as a sign-in from a new device, and is told.
t.test('a second step refused because the owner ended a session, sent again, opens a session that is told of', onServer, async t => {
  const account = await registerProvenAccount(app, prisma)
  const owner = await appLogin(account)
  const other = await appLogin(account)
  const { secret } = await enrolTotp(app, { authorization: `Bearer ${owner.accessToken}` }, clock, account.password)
  await mail.nextMail(account.email, { subject: SUBJECT })
  clock.advance(16 * 60)
  // Signing in again from the device of the session the owner ends meanwhile.
  const { mfaToken } = (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password, deviceToken: other.deviceToken } })).json() as { mfaToken: string }
  const verify = async (code: string) => await app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfaToken, code, deviceToken: other.deviceToken } })
  let ended: Promise<{ statusCode: number }> | undefined
  // The table held against writes: the code is checked and the challenge met, then the
  // session's statement and the owner's end of the other session both wait to write "User".
  const refused = await whileHeld(database.url, pool, {
    hold: async holder => await holder.query('LOCK TABLE "User" IN SHARE ROW EXCLUSIVE MODE'),
    waitingStatement: loginStatement,
    meanwhile: async () => {
      ended = app.inject({ method: 'DELETE', url: `/auth/sessions/${other.sessionId}`, headers: { authorization: `Bearer ${owner.accessToken}` } })
      await until('the end to wait to count its sign-out', async () =>
        (await pool.query('SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = \'Lock\' AND query LIKE $1', ['%SET "signOutGeneration"%'])).rowCount === 1, 5000)
    }
  }, async () => await verify(nextCode(secret, clock)))
  t.equal((await ended)?.statusCode, 204)
  t.equal(refused.json().code, 'AUTH_INVALID_CREDENTIALS', 'the step under way opens no session then')
  t.equal((await verify('000000')).statusCode, 200, 'sent again, it resumes, as after a 503')
  t.match(await lastLogin(account.user.id), { newDevice: true, noticed: true }, 'from a device the end forgot: told of')
  t.ok(await mail.nextMail(account.email, { subject: SUBJECT }))
})

t.test('a reused refresh token and an admin\'s end of a session forget the device too', async t => {
  const admin = await loginAsAdmin(app, prisma)
  for (const remedy of ['reuse', 'admin'] as const) {
    const account = await registerProvenAccount(app, prisma)
    await appLogin(account)
    const intruder = await appLogin(account)
    await mail.nextMail(account.email, { subject: SUBJECT })
    clock.advance(16 * 60)
    if (remedy === 'reuse') {
      const refresh = async () => await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: intruder.refreshToken } })
      t.equal((await refresh()).statusCode, 200)
      clock.advance(120)
      t.equal((await refresh()).json().code, 'AUTH_REFRESH_REUSED')
    } else {
      const ended = await app.inject({ method: 'DELETE', url: `/admin/users/${account.user.id}/sessions/${intruder.sessionId}`, headers: admin.headers })
      t.equal(ended.statusCode, 204, ended.body)
    }
    await appLogin(account, intruder.deviceToken)
    t.match(await lastLogin(account.user.id), { newDevice: true, noticed: true })
    t.ok(await mail.nextMail(account.email, { subject: SUBJECT }), `${remedy}: the device is told again`)
  }
})

// Regression: one browser's sessions of several accounts had one hash, which told whoever read the table that they share it.
t.test('one browser signed in to two accounts leaves nothing in common in their sessions', async t => {
  const [first, second] = [await registerProvenAccount(app, prisma), await registerProvenAccount(app, prisma)]
  const { device } = await browserLogin(first)
  await browserLogin(second, device)
  const rows = await prisma.session.findMany({ where: { userId: { in: [first.user.id, second.user.id] } }, select: { deviceHash: true } })
  t.equal(rows.length, 2)
  t.not(Buffer.from(rows[0]?.deviceHash ?? []).toString('hex'), Buffer.from(rows[1]?.deviceHash ?? []).toString('hex'))
})

t.test('a password change keeps the changer\'s device known and forgets the others', async t => {
  const account = await registerProvenAccount(app, prisma)
  const owner = await appLogin(account)
  const other = await appLogin(account)
  await mail.nextMail(account.email, { subject: SUBJECT })
  const newPassword = 'a new and long passphrase 42'
  const changed = await app.inject({ method: 'POST', url: '/auth/password/change', headers: { authorization: `Bearer ${owner.accessToken}` }, payload: { currentPassword: account.password, newPassword } })
  t.equal(changed.statusCode, 204, changed.body)
  clock.advance(16 * 60)
  await appLogin({ email: account.email, password: newPassword }, owner.deviceToken)
  t.equal(await noticesReceived(mail, account.email), 0, 'the device that changed it')
  await appLogin({ email: account.email, password: newPassword }, other.deviceToken)
  t.match(await lastLogin(account.user.id), { newDevice: true, noticed: true })
  t.ok(await mail.nextMail(account.email, { subject: SUBJECT }), 'another device, known before the change')
})

t.test('a live session opened before devices were recorded stands for any device: an upgrade tells nobody signed in', async t => {
  const account = await registerProvenAccount(app, prisma)
  const before = await appLogin(account)
  await prisma.$executeRaw`UPDATE "Session" SET "deviceHash" = NULL WHERE "userId" = ${account.user.id}::uuid`
  await appLogin(account)
  t.equal(await noticesReceived(mail, account.email), 0)
  t.notOk('newDevice' in (await lastLogin(account.user.id) as object))
  const meanwhile = await appLogin(account)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${before.accessToken}` } })).statusCode, 204)
  await appLogin(account)
  t.ok(await mail.nextMail(account.email, { subject: SUBJECT }), 'once it ended, it stands for none')
  // Regression: a device that signed in while such a session lived stayed known after it ended, never told of.
  clock.advance(16 * 60)
  await appLogin(account, meanwhile.deviceToken)
  t.match(await lastLogin(account.user.id), { newDevice: true, noticed: true }, 'a device it stood for is told of once')
  await mail.nextMail(account.email, { subject: SUBJECT })
})

t.test('a dormant account: its first sign-in after the retention time is from a new device', async t => {
  const account = await registerProvenAccount(app, prisma)
  clock.advance(31 * 86_400)
  await appLogin(account)
  t.ok(await mail.nextMail(account.email, { subject: SUBJECT }), 'made before the retention time, no session: told')
  const { deviceToken } = await appLogin(account)
  await prisma.$executeRaw`UPDATE "Session" SET "revokedAt" = ${new Date(clock.now().getTime() - 31 * 86_400_000)} WHERE "userId" = ${account.user.id}::uuid`
  clock.advance(16 * 60)
  await appLogin(account, deviceToken)
  t.ok(await mail.nextMail(account.email, { subject: SUBJECT }), 'a device whose sessions ended before the retention time is forgotten')
})

t.test('with a second factor the notice waits for the session: the second step, in its transport', async t => {
  const account = await registerProvenAccount(app, prisma)
  const owner = await appLogin(account)
  const { secret } = await enrolTotp(app, { authorization: `Bearer ${owner.accessToken}` }, clock, account.password)
  await mail.nextMail(account.email, { subject: /^Two-step sign-in is on$/ })
  const started = await startLogin(app, account)
  t.equal(await noticesQueued(account.email), 0, 'the password step opens no session and tells nothing here')
  const verified = await app.inject({ method: 'POST', url: '/auth/mfa/verify', headers: { 'sec-fetch-site': 'same-origin', 'user-agent': FIREFOX }, payload: { mfaToken: started.json().mfaToken, code: nextCode(secret, clock) } })
  t.equal(verified.statusCode, 200)
  t.ok(verified.cookies.some(c => c.name === DEVICE_COOKIE), 'the device cookie comes with the session')
  t.match((await mail.nextMail(account.email, { subject: SUBJECT })).text, /Firefox on Windows/)
})

t.test('a passkey sign-in: a browser gets the device cookie, an app its token, and a new device is told', async t => {
  const account = await registerProvenAccount(app, prisma)
  const owner = await appLogin(account)
  const passkey = await registerPasskey(app, { authorization: `Bearer ${owner.accessToken}` }, account.password)
  await mail.nextMail(account.email, { subject: /^A passkey was added$/ })
  const passwordless = async (headers: Record<string, string>, extra: object = {}) => {
    const options = await app.inject({ method: 'POST', url: '/auth/passkeys/login/options' })
    return await app.inject({ method: 'POST', url: '/auth/passkeys/login/verify', headers, payload: { response: passkey.assert(options.json()), ...extra } })
  }
  const known = await passwordless({}, { deviceToken: owner.deviceToken })
  t.equal(known.json().deviceToken, owner.deviceToken)
  t.equal(await noticesReceived(mail, account.email), 0, 'the app that signed in before')
  const browser = await passwordless({ 'sec-fetch-site': 'same-origin', 'user-agent': FIREFOX })
  t.ok(browser.cookies.some(c => c.name === DEVICE_COOKIE))
  t.match((await mail.nextMail(account.email, { subject: SUBJECT })).text, /Firefox on Windows/)
})

// Regression: a registrant who never proved the address mailed its holder at every new device.
t.test('an address never proven is mailed no notice: it may be a stranger\'s', async t => {
  const account = await registerAccount(app)
  await prisma.user.update({ where: { id: account.user.id }, data: { emailVerifiedAt: null } })
  await appLogin(account)
  await appLogin(account)
  t.equal(await noticesReceived(mail, account.email), 0)
  const details = await lastLogin(account.user.id) as object
  t.match(details, { newDevice: true })
  t.notOk('noticed' in details)
})

t.test('SIGN_IN_NOTICES=false: no mail, the activity still marks the new device', async t => {
  const quiet = await buildTestApp(t, { env: { SMTP_URL: mail.url, SIGN_IN_NOTICES: 'false' } })
  const account = await registerAccount(quiet.app)
  for (let i = 0; i < 2; i++) {
    const response = await quiet.app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } })
    t.equal(response.statusCode, 200)
  }
  t.equal(await quiet.prisma.outboxMail.count({ where: { recipient: account.email, kind: 'new_sign_in' } }), 0)
  t.match((await quiet.prisma.auditEvent.findFirstOrThrow({ where: { subjectId: account.user.id, action: 'login.succeeded' }, orderBy: { createdAt: 'desc' } })).details, { newDevice: true })
})
