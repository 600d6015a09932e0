// Second factor over HTTP: enrolment, the login challenge and its verify in both transports, recovery codes, replay, limits, mails and audit.
import t from 'tap'
import { hashRecoveryCode } from '../../src/services/mfa/recovery-codes.js'
import { totpCode } from '../../src/services/mfa/totp.js'
import { loginAsAdmin } from '../helpers/admin.js'
import { buildTestApp } from '../helpers/app.js'
import { racedWhileHeld, whileHeld } from '../helpers/locks.js'
import { startMailServer } from '../helpers/mail.js'
import { claimsOf, confirmEnrolment, enrolTotp, nextCode, startEnrolment, startLogin } from '../helpers/mfa.js'
import { loginWithBody, proveAddress, registerAccount, registerProvenAccount } from '../helpers/users.js'

const mail = await startMailServer(t)
// The login backoff as configured in production: wrong codes must reach it.
const { app, prisma, pool, database, clock } = await buildTestApp(t, { env: { SMTP_URL: mail.url, LOGIN_BACKOFF_AFTER_FAILURES: '5' } })

const bearer = (accessToken: string) => ({ authorization: `Bearer ${accessToken}` })
const verify = (payload: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/auth/mfa/verify', headers, payload: payload as object })
const me = (headers: Record<string, string>) => app.inject({ method: 'GET', url: '/users/me', headers })

/** An account with TOTP set up, and a session of it. */
async function enrolledAccount () {
  const account = await registerProvenAccount(app, prisma)
  const tokens = await loginWithBody(app, account)
  const enrolled = await enrolTotp(app, bearer(tokens.accessToken), clock, account.password)
  return { ...account, ...enrolled, tokens }
}

async function challengeOf (account: { email: string, password: string }): Promise<string> {
  const response = await startLogin(app, account)
  if (response.json().mfaToken === undefined) throw new Error(`no challenge: ${response.body}`)
  return response.json().mfaToken as string
}

t.test('enrolment: a secret, its URI and QR code; a first code confirms it and gives ten recovery codes once', async t => {
  const account = await registerProvenAccount(app, prisma)
  const { accessToken } = await loginWithBody(app, account)
  const headers = bearer(accessToken)
  const first = await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers, payload: { currentPassword: account.password } })
  t.equal(first.statusCode, 200)
  t.equal(first.headers['cache-control'], 'no-store')
  const { secret, otpauthUri, qrSvg } = first.json()
  t.match(secret, /^[A-Z2-7]{32}$/)
  t.match(otpauthUri, /^otpauth:\/\/totp\/localhost:user-[0-9a-f]+%40example\.com\?/)
  t.match(qrSvg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  t.same((await me(headers)).json().mfa, { totp: false, recoveryCodesLeft: 0 }, 'nothing guards the login before confirmation')
  t.equal((await startLogin(app, account)).json().mfaRequired, undefined)

  const again = await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers, payload: { currentPassword: account.password } })
  const replaced = again.json().secret as string
  t.not(replaced, secret, 'enrolling again replaces the unconfirmed secret')
  const stored = await prisma.totpFactor.findUniqueOrThrow({ where: { userId: account.user.id } })
  t.notOk(Buffer.from(stored.sealedSecret).includes(Buffer.from(replaced)), 'the secret is sealed at rest')

  const wrong = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers, payload: { code: totpCode(secret, clock.now()) } })
  t.equal(wrong.statusCode, 400)
  t.same(wrong.json(), { statusCode: 400, code: 'MFA_CODE_INVALID', error: 'Bad Request', message: 'The code is wrong or was already used' })

  const code = totpCode(replaced, clock.now())
  const confirmed = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers, payload: { code: `${code.slice(0, 3)} ${code.slice(3)}` } })
  t.equal(confirmed.statusCode, 200)
  const { recoveryCodes } = confirmed.json()
  t.equal(recoveryCodes.length, 10)
  t.same((await me(headers)).json().mfa, { totp: true, recoveryCodesLeft: 10 })
  const rows = await prisma.recoveryCode.findMany({ where: { userId: account.user.id } })
  t.notOk(rows.some(row => recoveryCodes.some((c: string) => row.codeHash.includes(c.replaceAll('-', '')))), 'only hashes are stored')

  t.equal((await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers, payload: { currentPassword: account.password } })).json().code, 'MFA_ALREADY_ENABLED')
  const twice = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers, payload: { code } })
  t.equal(twice.statusCode, 409)
  t.equal(twice.json().code, 'MFA_ALREADY_ENABLED')
  t.match((await mail.nextMail(account.email, { subject: /^Two-step sign-in is on$/ })).text, /authenticator app was set up/)
  const actions = (await prisma.auditEvent.findMany({ where: { subjectId: account.user.id }, select: { action: true } })).map(e => e.action)
  for (const action of ['mfa.totp_enrolment_started', 'mfa.code_failed', 'mfa.totp_enabled']) t.ok(actions.includes(action), `audited: ${action}`)
})

t.test('an enrolment begun on a session that has ended since cannot be confirmed: no factor only its starter holds', async t => {
  const account = await registerProvenAccount(app, prisma)
  const intruder = await loginWithBody(app, account)
  const { secret } = (await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: bearer(intruder.accessToken), payload: { currentPassword: account.password } })).json()
  const owner = await loginWithBody(app, account)
  const newPassword = 'an entirely new passphrase 51'
  const change = await app.inject({ method: 'POST', url: '/auth/password/change', headers: bearer(owner.accessToken), payload: { currentPassword: account.password, newPassword } })
  t.equal(change.statusCode, 204, 'the change ends every other session')

  const confirm = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers: bearer(intruder.accessToken), payload: { code: totpCode(secret, clock.now()) } })
  t.equal(confirm.statusCode, 401)
  t.equal(confirm.json().code, 'AUTH_SESSION_REVOKED')
  t.equal(await prisma.totpFactor.count({ where: { userId: account.user.id } }), 0, 'the new password ended the set-up the old one began')
  t.equal(await prisma.recoveryCode.count({ where: { userId: account.user.id } }), 0)
  const login = await startLogin(app, { email: account.email, password: newPassword })
  t.equal(login.statusCode, 200)
  t.equal(login.json().mfaRequired, undefined, 'the owner signs in with the password alone')
})

t.test('an address never proven sets up no authenticator: 403 EMAIL_NOT_VERIFIED, at the start and at the confirmation', async t => {
  const account = await registerAccount(app)
  const headers = bearer((await loginWithBody(app, account)).accessToken)
  const refused = await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers, payload: { currentPassword: account.password } })
  t.equal(refused.statusCode, 403)
  t.same(refused.json(), { statusCode: 403, code: 'EMAIL_NOT_VERIFIED', error: 'Forbidden', message: 'Verify your email address first: follow the link mailed to you' })
  t.equal(await prisma.totpFactor.count({ where: { userId: account.user.id } }), 0, 'no secret is kept')

  // An enrolment begun while the address was proven, or before this rule: the factor takes effect only on a proven address.
  await proveAddress(prisma, account.user.id)
  const { secret } = (await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers, payload: { currentPassword: account.password } })).json()
  await prisma.user.update({ where: { id: account.user.id }, data: { emailVerifiedAt: null } })
  const confirm = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers, payload: { code: totpCode(secret, clock.now()) } })
  t.equal(confirm.statusCode, 403)
  t.equal(confirm.json().code, 'EMAIL_NOT_VERIFIED')
  t.equal((await prisma.totpFactor.findUniqueOrThrow({ where: { userId: account.user.id } })).confirmedAt, null)
  t.equal(await prisma.recoveryCode.count({ where: { userId: account.user.id } }), 0)
  t.equal((await startLogin(app, account)).json().mfaRequired, undefined, 'the password alone still signs in')

  await proveAddress(prisma, account.user.id)
  const confirmed = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers, payload: { code: totpCode(secret, clock.now()) } })
  t.equal(confirmed.statusCode, 200, 'once proven, the same code confirms: the refused attempt used nothing up')
})

t.test('a confirmation on an ended session is 401 AUTH_SESSION_REVOKED: it learns nothing of the factor, and its codes are not audited (regression: 409 or 400)', async t => {
  const account = await registerProvenAccount(app, prisma)
  const { accessToken, refreshToken } = await loginWithBody(app, account)
  t.equal((await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: bearer(accessToken), payload: { currentPassword: account.password } })).statusCode, 200)
  await app.inject({ method: 'POST', url: '/auth/logout', payload: { refreshToken } })
  const response = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers: bearer(accessToken), payload: { code: '000000' } })
  t.equal(response.statusCode, 401)
  t.equal(response.json().code, 'AUTH_SESSION_REVOKED')
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'mfa.code_failed' } }), 0, 'no wrong code recorded')
})

t.test('confirming before enrolling is 409 MFA_ENROLMENT_NOT_STARTED', async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  const response = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers: bearer(accessToken), payload: { code: '123456' } })
  t.equal(response.statusCode, 409)
  t.equal(response.json().code, 'MFA_ENROLMENT_NOT_STARTED')
})

// Regression: an abandoned enrolment stayed open to code guessing, from any session of the user, for ever.
t.test('an enrolment waits 15 minutes for its first code: later, from any session, 409 MFA_ENROLMENT_NOT_STARTED, no code checked', async t => {
  const account = await registerProvenAccount(app, prisma)
  const secret = await startEnrolment(app, bearer((await loginWithBody(app, account)).accessToken), account.password)
  clock.advance(15 * 60 + 1)
  const other = bearer((await loginWithBody(app, account)).accessToken)
  const late = await confirmEnrolment(app, other, totpCode(secret, clock.now()))
  t.equal(late.statusCode, 409)
  t.same(late.json(), { statusCode: 409, code: 'MFA_ENROLMENT_NOT_STARTED', error: 'Conflict', message: 'Start the enrolment first: POST /auth/mfa/totp' })
  t.equal((await prisma.totpFactor.findUniqueOrThrow({ where: { userId: account.user.id } })).confirmedAt, null)
  t.equal(await prisma.recoveryCode.count({ where: { userId: account.user.id } }), 0, 'no recovery codes handed out')
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'mfa.code_failed' } }), 0, 'the code is not even checked')
  t.equal((await startLogin(app, account)).json().mfaRequired, undefined, 'the password alone still signs in')

  const again = await startEnrolment(app, other, account.password)
  clock.advance(15 * 60 - 30)
  t.equal((await confirmEnrolment(app, other, totpCode(again, clock.now()))).statusCode, 200, 'starting again starts the 15 minutes again')
})

t.test('an enrolment not confirmed can be cancelled: 204, no mail, audited; then there is nothing to remove (409)', async t => {
  const account = await registerProvenAccount(app, prisma)
  const headers = bearer((await loginWithBody(app, account)).accessToken)
  const secret = await startEnrolment(app, headers, account.password)
  const cancelled = await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers })
  t.equal(cancelled.statusCode, 204)
  t.equal(await prisma.totpFactor.count({ where: { userId: account.user.id } }), 0)
  const confirm = await confirmEnrolment(app, headers, totpCode(secret, clock.now()))
  t.equal(confirm.statusCode, 409)
  t.equal(confirm.json().code, 'MFA_ENROLMENT_NOT_STARTED', 'its secret confirms nothing')
  const again = await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers })
  t.equal(again.statusCode, 409)
  t.equal(again.json().code, 'MFA_NOT_ENABLED')
  const removals = await prisma.auditEvent.findMany({ where: { subjectId: account.user.id, action: 'mfa.totp_removed' }, select: { details: true } })
  t.same(removals.map(entry => entry.details), [{ confirmed: false }])
  // Mail goes out in the order it was queued: once the "on" mail of a later setup is here, an "off" mail would be too.
  await enrolTotp(app, headers, clock, account.password)
  await mail.nextMail(account.email, { subject: /^Two-step sign-in is on$/ })
  t.same(mail.untaken(account.email).map(m => m.subject).filter(subject => /off/.test(subject)), [], 'no mail: the factor never guarded a login')
})

// Regression: wrong first codes were audited but never counted, so a session, even a stale
// stolen one, could guess at an unconfirmed enrolment as long as the per-address limit allowed.
t.test('wrong confirmation codes reach the account\'s login backoff: 429 with Retry-After, there and at login', async t => {
  const account = await registerProvenAccount(app, prisma)
  const headers = bearer((await loginWithBody(app, account)).accessToken)
  const secret = await startEnrolment(app, headers, account.password)
  for (let i = 0; i < 5; i++) t.equal((await confirmEnrolment(app, headers, '000000')).statusCode, 400, `wrong code ${i + 1}`)
  const limited = await confirmEnrolment(app, headers, totpCode(secret, clock.now()))
  t.equal(limited.statusCode, 429, 'five failures: even the right code waits')
  t.same(limited.json(), { statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests', message: 'Too many requests; retry later' })
  t.ok(Number(limited.headers['retry-after']) > 0)
  t.equal((await startLogin(app, account)).statusCode, 429, 'login waits too')
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'mfa.code_failed' } }), 5)
  clock.advance(31)
  t.equal((await confirmEnrolment(app, headers, totpCode(secret, clock.now()))).statusCode, 200, 'the wait over, the right code confirms')
})

t.test('wrong confirmation codes sent at once take their turns: no more tries than the backoff allows', async t => {
  const account = await registerProvenAccount(app, prisma)
  const headers = bearer((await loginWithBody(app, account)).accessToken)
  await startEnrolment(app, headers, account.password)
  const burst = await Promise.all(Array.from({ length: 8 }, async (_, i) => (await confirmEnrolment(app, headers, '000000', `10.5.0.${i}`)).statusCode))
  t.same([...burst].sort((a, b) => a - b), [400, 400, 400, 400, 400, 429, 429, 429])
})

t.test('a cancellation committed while a right code waits to confirm wins: 409 MFA_ENROLMENT_NOT_STARTED, no factor', {
  skip: database.poolSize === 1 && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
}, async t => {
  const account = await registerProvenAccount(app, prisma)
  const headers = bearer((await loginWithBody(app, account)).accessToken)
  const secret = await startEnrolment(app, headers, account.password)
  const response = await whileHeld(database.url, pool, {
    // What a cancellation does: the user's row first (see lockUser), then the enrolment gone.
    hold: async holder => {
      await holder.query('SELECT 1 FROM "User" WHERE id = $1 FOR UPDATE', [account.user.id])
      await holder.query('DELETE FROM "TotpFactor" WHERE "userId" = $1', [account.user.id])
    },
    waitingStatement: '%FROM "User" WHERE id = $1::uuid FOR UPDATE%'
  }, async () => await confirmEnrolment(app, headers, totpCode(secret, clock.now())))
  t.equal(response.statusCode, 409)
  t.equal(response.json().code, 'MFA_ENROLMENT_NOT_STARTED', 'not MFA_ALREADY_ENABLED: nothing is set up')
  t.equal(await prisma.totpFactor.count({ where: { userId: account.user.id } }), 0)
  t.equal(await prisma.recoveryCode.count({ where: { userId: account.user.id } }), 0)
})

t.test('login with a factor: a challenge and no token or cookie; verify answers as login does (body)', async t => {
  const account = await enrolledAccount()
  const login = await startLogin(app, account)
  t.equal(login.statusCode, 200)
  t.same(Object.keys(login.json()).sort(), ['expiresIn', 'methods', 'mfaRequired', 'mfaToken'])
  t.match(login.json(), { mfaRequired: true, methods: ['totp', 'recovery_code'], expiresIn: 300 })
  t.same(login.cookies, [])
  t.equal(login.headers['cache-control'], 'no-store')

  const verified = await verify({ mfaToken: login.json().mfaToken, code: nextCode(account.secret, clock) })
  t.equal(verified.statusCode, 200)
  t.same(Object.keys(verified.json()).sort(), ['accessToken', 'deviceToken', 'expiresIn', 'refreshToken', 'sessionId', 'tokenType', 'user'])
  t.same(verified.cookies, [], 'a body client gets no cookie')
  const claims = claimsOf(verified.json().accessToken)
  t.same(claims.amr, ['pwd', 'otp', 'mfa'])
  const authTime = claims.auth_time as number
  t.ok(Math.abs(authTime - clock.now().getTime() / 1000) < 5, 'auth_time is the login')
  t.equal((await me(bearer(verified.json().accessToken))).statusCode, 200)

  clock.advance(120)
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: verified.json().refreshToken } })
  t.equal(refreshed.statusCode, 200)
  const after = claimsOf(refreshed.json().accessToken)
  t.same([after.amr, after.auth_time], [['pwd', 'otp', 'mfa'], authTime], 'amr and auth_time survive the refresh')
  t.ok((after.iat as number) > authTime)
  const session = await app.inject({ method: 'GET', url: '/auth/session', headers: bearer(refreshed.json().accessToken) })
  t.match(session.json(), { amr: ['pwd', 'otp', 'mfa'], auth_time: authTime })

  t.equal((await verify({ mfaToken: login.json().mfaToken, code: nextCode(account.secret, clock) })).json().code, 'MFA_CHALLENGE_EXPIRED', 'single use')
})

t.test('a password-only login carries amr pwd', async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  t.match(claimsOf(accessToken), { amr: ['pwd'], auth_time: Number })
})

t.test('verify in cookie mode: a browser, or transport cookie, gets cookies only', async t => {
  const account = await enrolledAccount()
  const browserLogin = await startLogin(app, account, { 'sec-fetch-site': 'same-origin' })
  t.same(browserLogin.cookies, [], 'no cookie before the second factor')
  const browser = await verify({ mfaToken: browserLogin.json().mfaToken, code: nextCode(account.secret, clock) }, { 'sec-fetch-site': 'same-origin' })
  t.equal(browser.statusCode, 200)
  t.same(Object.keys(browser.json()).sort(), ['expiresIn', 'sessionId', 'user'])
  t.same(browser.cookies.map(c => c.name).sort(), ['__Host-access_token', '__Host-auth_device', '__Host-refresh_token'])
  t.ok(browser.cookies.every(c => c.httpOnly === true && c.secure === true))

  const asked = await verify({ mfaToken: await challengeOf(account), code: nextCode(account.secret, clock), transport: 'cookie' })
  t.same(Object.keys(asked.json()).sort(), ['expiresIn', 'sessionId', 'user'])
  t.equal(asked.cookies.length, 3)

  const foreign = await verify({ mfaToken: await challengeOf(account), code: nextCode(account.secret, clock) }, { origin: 'https://evil.example' })
  t.equal(foreign.statusCode, 403)
  t.equal(foreign.json().code, 'CSRF_REJECTED')
})

t.test('each code works once: a code used at login is refused again within its window', async t => {
  const account = await enrolledAccount()
  const code = nextCode(account.secret, clock)
  t.equal((await verify({ mfaToken: await challengeOf(account), code })).statusCode, 200)
  const replay = await verify({ mfaToken: await challengeOf(account), code })
  t.equal(replay.statusCode, 401)
  t.equal(replay.json().code, 'MFA_CODE_INVALID')
  const older = totpCode(account.secret, new Date(clock.now().getTime() - 30_000))
  t.equal((await verify({ mfaToken: await challengeOf(account), code: older })).json().code, 'MFA_CODE_INVALID', 'nor an earlier step')
  t.equal((await verify({ mfaToken: await challengeOf(account), code: nextCode(account.secret, clock) })).statusCode, 200, 'the next step works')
})

t.test('recovery codes: any case, spaces or dashes; each works once; the owner is told', async t => {
  const account = await enrolledAccount()
  const [first, second] = account.recoveryCodes as [string, string]
  const typed = ` ${first.toUpperCase().replaceAll('-', ' ')} `
  const used = await verify({ mfaToken: await challengeOf(account), recoveryCode: typed.trim() })
  t.equal(used.statusCode, 200)
  t.same(claimsOf(used.json().accessToken).amr, ['pwd', 'mfa'])
  t.same((await me(bearer(used.json().accessToken))).json().mfa, { totp: true, recoveryCodesLeft: 9 })
  t.match((await mail.nextMail(account.email, { subject: /^A recovery code was used$/ })).text, /9 codes are left/)
  const again = await verify({ mfaToken: await challengeOf(account), recoveryCode: first })
  t.equal(again.json().code, 'MFA_CODE_INVALID', 'a used code is dead')
  t.equal((await verify({ mfaToken: await challengeOf(account), recoveryCode: second.replaceAll('-', '') })).statusCode, 200)
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'mfa.recovery_code_used' } }), 2)
})

// Crockford's base32 decoding: the alphabet has no O, I or L, so they can only be a misread 0 or 1.
t.test('a recovery code typed with O for 0, and I or L for 1, is accepted', async t => {
  const account = await enrolledAccount()
  const printed = '0a1b-c0d1-e0f1-g01h'
  await prisma.recoveryCode.create({ data: { userId: account.user.id, codeHash: hashRecoveryCode(printed) } })
  const used = await verify({ mfaToken: await challengeOf(account), recoveryCode: 'oA1B CoDI-EOFl gOLh' })
  t.equal(used.statusCode, 200)
  t.equal(await prisma.recoveryCode.count({ where: { userId: account.user.id, usedAt: { not: null } } }), 1, 'that code is used up')
})

t.test('a challenge dies after five wrong codes, and the wrong codes reach the login backoff', async t => {
  const account = await enrolledAccount()
  const mfaToken = await challengeOf(account)
  for (let i = 0; i < 5; i++) {
    const wrong = await verify({ mfaToken, code: '000000' })
    t.equal(wrong.statusCode, 401, `wrong code ${i + 1}`)
    t.equal(wrong.json().code, 'MFA_CODE_INVALID')
    t.equal(wrong.headers['www-authenticate'], 'Bearer')
  }
  const dead = await verify({ mfaToken, code: totpCode(account.secret, new Date(clock.now().getTime() + 30_000)) })
  t.equal(dead.statusCode, 401)
  t.same(dead.json(), { statusCode: 401, code: 'MFA_CHALLENGE_EXPIRED', error: 'Unauthorized', message: 'This sign-in has expired or had too many wrong codes; log in again' })
  const limited = await startLogin(app, account)
  t.equal(limited.statusCode, 429, 'five failures: the account must wait, as after five wrong passwords')
  t.equal(limited.json().code, 'RATE_LIMITED')
  t.ok(Number(limited.headers['retry-after']) > 0)
  const unknown = await startLogin(app, { email: 'nobody@example.com', password: 'whatever it is' })
  t.equal(unknown.statusCode, 401, 'an unknown account is not limited by it')
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'mfa.code_failed' } }), 5)

  clock.advance(31)
  const mfaTokenLater = await challengeOf(account)
  const stillWaiting = await verify({ mfaToken: mfaTokenLater, code: '000000' })
  t.equal(stillWaiting.statusCode, 401, 'the wait over, one more try')
  const waiting = await verify({ mfaToken: mfaTokenLater, code: nextCode(account.secret, clock) })
  t.equal(waiting.statusCode, 429, 'the verify step waits too (the same 429)')
  clock.advance(61)
  t.equal((await verify({ mfaToken: mfaTokenLater, code: nextCode(account.secret, clock) })).statusCode, 200)
  t.equal((await startLogin(app, account)).statusCode, 200, 'success clears the failures')
})

t.test('a password reset does not lift the wait of wrong codes: whoever holds the mailbox gets no fresh budget of guesses (regression: each reset cleared it, 36 times the lockout\'s in a day)', async t => {
  const account = await enrolledAccount()
  const mfaToken = await challengeOf(account)
  for (let i = 0; i < 5; i++) t.equal((await verify({ mfaToken, code: '000000' })).statusCode, 401, `wrong code ${i + 1}`)
  t.equal((await startLogin(app, account)).statusCode, 429, 'the account waits')
  await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })
  const { token } = await mail.nextMail(account.email, { subject: /reset/i })
  const password = 'a brand new passphrase 7'
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, password } })).statusCode, 204)
  const afterReset = await challengeOf({ email: account.email, password })
  t.ok(afterReset, 'the reset lifts the password\'s wait: the new password is taken')
  const guess = await verify({ mfaToken: afterReset, code: '000000' })
  t.equal(guess.statusCode, 429, 'but not the wait of the wrong codes')
  t.equal(guess.json().code, 'RATE_LIMITED')
  clock.advance(Number(guess.headers['retry-after']))
  t.equal((await verify({ mfaToken: afterReset, code: nextCode(account.secret, clock) })).statusCode, 200, 'the owner, with the factor, once the wait is over')
  const next = await challengeOf({ email: account.email, password })
  t.equal((await verify({ mfaToken: next, code: '000000' })).statusCode, 401, 'and the sign-in cleared the count')
})

t.test('an admin\'s removal of the factors, or a sign-in without a second step, clears the wait of wrong codes: a factor set up anew starts with none', async t => {
  const admin = await loginAsAdmin(app, prisma)
  const account = await enrolledAccount()
  const mfaToken = await challengeOf(account)
  for (let i = 0; i < 5; i++) t.equal((await verify({ mfaToken, code: '000000' })).statusCode, 401, `wrong code ${i + 1}`)
  t.equal((await app.inject({ method: 'DELETE', url: `/admin/users/${account.user.id}/mfa`, headers: admin.headers })).statusCode, 204)
  // Within the wait: a reset lifts the password's, and the owner signs in at once.
  await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })
  const { token } = await mail.nextMail(account.email, { subject: /reset/i })
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, password: `${account.password} anew` } })).statusCode, 204)
  account.password = `${account.password} anew`
  const signedIn = await startLogin(app, account)
  t.equal(signedIn.statusCode, 200, 'signed in with the password alone')
  const again = await enrolTotp(app, bearer(signedIn.json().accessToken), clock, account.password)
  const next = await challengeOf(account)
  // The next step's code, taken as drift, without moving the clock past the wait.
  t.equal((await verify({ mfaToken: next, code: totpCode(again.secret, new Date(clock.now().getTime() + 30_000)) })).statusCode, 200, 'the new factor\'s first code, at once')
})

t.test('wrong codes sent at once to challenges begun by the address and by the username take their turns (regression: each identifier\'s check read the count before the other\'s failure)', async t => {
  const account = await enrolledAccount()
  const username = `turns${Date.now().toString(36)}`
  await prisma.user.update({ where: { id: account.user.id }, data: { username } })
  const first = await challengeOf(account)
  for (let i = 0; i < 5; i++) await verify({ mfaToken: first, code: '000000' })
  clock.advance(31)
  const byAddress = await challengeOf(account)
  const byName = (await app.inject({ method: 'POST', url: '/auth/login', payload: { identifier: username, password: account.password } })).json().mfaToken as string
  const statuses = await Promise.all([verify({ mfaToken: byAddress, code: '000000' }), verify({ mfaToken: byName, code: '000000' })])
  t.same(statuses.map(response => response.statusCode).sort(), [401, 429], 'one guess past the wait, then the wait again')
})

// Regression: a reauthentication took only the address's turn, so in each wait it and a second
// step begun by the username had a code checked each (67 codes before the lock, not 50).
t.test('a second step begun by the username and a reauthentication by code, sent at once in the account\'s wait, take their turns: one code checked, the other 429', async t => {
  const account = await enrolledAccount()
  const first = await challengeOf(account)
  for (let i = 0; i < 5; i++) await verify({ mfaToken: first, code: '000000' })
  clock.advance(31)
  const byName = (await app.inject({ method: 'POST', url: '/auth/login', payload: { identifier: account.username, password: account.password } })).json().mfaToken as string
  const answers = await Promise.all([
    verify({ mfaToken: byName, code: '000000' }),
    app.inject({ method: 'POST', url: '/auth/reauthenticate', headers: bearer(account.tokens.accessToken), payload: { code: '000000' } })
  ])
  t.same(answers.map(answer => answer.json().code).sort(), ['MFA_CODE_INVALID', 'RATE_LIMITED'], 'one guess past the wait, then the wait again')
})

// Regression: they counted under the address alone, which a reset clears: each reset was a fresh budget of codes.
t.test('wrong codes and recovery codes at reauthentication count toward the account\'s second factor, as a second step\'s do: a password reset does not lift their wait', async t => {
  const account = await enrolledAccount()
  const headers = bearer(account.tokens.accessToken)
  for (const proof of [{ code: '000000' }, { recoveryCode: 'aaaa-bbbb-cccc-dddd' }, { code: '000000' }, { recoveryCode: 'aaaa-bbbb-cccc-dddd' }, { code: '000000' }]) {
    t.equal((await app.inject({ method: 'POST', url: '/auth/reauthenticate', headers, payload: proof })).json().code, 'MFA_CODE_INVALID')
  }
  // They counted under the address too: its logins wait (an attempt that waits counts nothing).
  const waiting = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } })
  t.equal(waiting.json().code, 'RATE_LIMITED', 'the address waits before the reset')
  await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })
  const { token } = await mail.nextMail(account.email, { subject: /reset/i })
  const password = 'a brand new passphrase 8'
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, password } })).statusCode, 204)
  const byAddress = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password } })
  t.equal(byAddress.statusCode, 200, 'the reset lifts the password\'s wait')
  const guess = await verify({ mfaToken: byAddress.json().mfaToken, code: '000000' })
  t.equal(guess.statusCode, 429, 'but not the wait of the codes guessed at reauthentication')
  t.equal(guess.json().code, 'RATE_LIMITED')
})

t.test('codes sent at once to several challenges take their turns: no more tries than the backoff allows', async t => {
  const account = await enrolledAccount()
  const challenges = [await challengeOf(account), await challengeOf(account), await challengeOf(account)]
  const statuses = await Promise.all(Array.from({ length: 9 }, async (_, i) =>
    (await app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfaToken: challenges[i % 3], code: '000000' }, remoteAddress: `10.4.0.${i}` })).statusCode))
  t.same([...statuses].sort((a, b) => a - b), [401, 401, 401, 401, 401, 429, 429, 429, 429], 'five wrong codes, as the policy allows, then the wait')
})

t.test('a challenge lives five minutes', async t => {
  const account = await enrolledAccount()
  const mfaToken = await challengeOf(account)
  clock.advance(301)
  const late = await verify({ mfaToken, code: totpCode(account.secret, clock.now()) })
  t.equal(late.statusCode, 401)
  t.equal(late.json().code, 'MFA_CHALLENGE_EXPIRED')
  t.equal((await verify({ mfaToken: 'no-such-challenge', code: '123456' })).json().code, 'MFA_CHALLENGE_EXPIRED')
})

t.test('two verifies racing with one challenge: exactly one signs in', async t => {
  const account = await enrolledAccount()
  for (const [name, proofs] of [
    ['the same code twice', () => { const code = nextCode(account.secret, clock); return [{ code }, { code }] }],
    ['a code and a recovery code', () => [{ code: nextCode(account.secret, clock) }, { recoveryCode: account.recoveryCodes.pop() }]]
  ] as const) {
    const mfaToken = await challengeOf(account)
    const answers = await Promise.all(proofs().map(proof => verify({ mfaToken, ...proof })))
    t.same(answers.map(a => a.statusCode).sort(), [200, 401], name)
  }
  const sessions = await prisma.session.count({ where: { userId: account.user.id } })
  t.equal(sessions, 3, 'the enrolling session and one per race')
})

t.test('removing the factor: fresh authentication, a mail, and login asks for the password only', async t => {
  const account = await enrolledAccount()
  const headers = bearer(account.tokens.accessToken)
  const removed = await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers })
  t.equal(removed.statusCode, 204)
  t.same((await me(headers)).json().mfa, { totp: false, recoveryCodesLeft: 0 })
  t.equal(await prisma.recoveryCode.count({ where: { userId: account.user.id } }), 0)
  t.match((await mail.nextMail(account.email, { subject: /^Two-step sign-in is off$/ })).text, /was removed/)
  t.match((await startLogin(app, account)).json(), { accessToken: String })
  const again = await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers })
  t.equal(again.statusCode, 409)
  t.equal(again.json().code, 'MFA_NOT_ENABLED')
  const regenerate = await app.inject({ method: 'POST', url: '/auth/mfa/recovery-codes', headers, payload: { currentPassword: account.password } })
  t.equal(regenerate.json().code, 'MFA_NOT_ENABLED')
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'mfa.totp_removed' } }), 1)
})

t.test('regenerating recovery codes kills the old set', async t => {
  const account = await enrolledAccount()
  const response = await app.inject({ method: 'POST', url: '/auth/mfa/recovery-codes', headers: bearer(account.tokens.accessToken), payload: { currentPassword: account.password } })
  t.equal(response.statusCode, 200)
  const { recoveryCodes } = response.json()
  t.equal(recoveryCodes.length, 10)
  t.equal((await verify({ mfaToken: await challengeOf(account), recoveryCode: account.recoveryCodes[0] })).json().code, 'MFA_CODE_INVALID')
  t.equal((await verify({ mfaToken: await challengeOf(account), recoveryCode: recoveryCodes[0] })).statusCode, 200)
  const notice = (await mail.nextMail(account.email, { subject: /^New recovery codes$/ })).text
  t.match(notice, /earlier ones no longer work/)
  t.match(notice, /someone knew your password: reset it now, then sign in and make new recovery codes/)
})

// An address never proven is the exception (test/routes/password-reset.test.ts).
t.test('a password reset of a proven address neither removes nor bypasses the factor', async t => {
  const account = await enrolledAccount()
  await prisma.user.update({ where: { id: account.user.id }, data: { emailVerifiedAt: new Date() } })
  await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })
  const resetMail = await mail.nextMail(account.email, { subject: /^Reset your password$/ })
  const password = 'a brand new passphrase'
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: resetMail.token, password } })).statusCode, 204)
  const login = await startLogin(app, { email: account.email, password })
  t.match(login.json(), { mfaRequired: true })
  t.equal((await verify({ mfaToken: login.json().mfaToken, code: nextCode(account.secret, clock) })).statusCode, 200)
})

// A challenge is half a login, proven by the password: one begun with the old password used to
// outlive a reset and complete with the factor alone.
t.test('a password reset or change voids the challenges the old password began', async t => {
  const account = await enrolledAccount()
  await prisma.user.update({ where: { id: account.user.id }, data: { emailVerifiedAt: new Date() } })
  const before = await challengeOf(account)
  await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })
  const resetMail = await mail.nextMail(account.email, { subject: /^Reset your password$/ })
  const password = 'a brand new passphrase'
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: resetMail.token, password } })).statusCode, 204)
  const afterReset = await verify({ mfaToken: before, code: nextCode(account.secret, clock) })
  t.equal(afterReset.statusCode, 401)
  t.equal(afterReset.json().code, 'MFA_CHALLENGE_EXPIRED')

  const signedIn = await verify({ mfaToken: await challengeOf({ email: account.email, password }), code: nextCode(account.secret, clock) })
  t.equal(signedIn.statusCode, 200, 'a challenge of the new password works')
  const pending = await challengeOf({ email: account.email, password })
  const changed = await app.inject({ method: 'POST', url: '/auth/password/change', headers: bearer(signedIn.json().accessToken), payload: { currentPassword: password, newPassword: 'yet another new passphrase' } })
  t.equal(changed.statusCode, 204)
  t.equal((await verify({ mfaToken: pending, code: nextCode(account.secret, clock) })).json().code, 'MFA_CHALLENGE_EXPIRED', 'and after a change')
})

t.test('a password reset committed while a challenge is being met wins: no session opens', {
  skip: database.poolSize === 1 && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
}, async t => {
  const account = await enrolledAccount()
  const mfaToken = await challengeOf(account)
  const response = await whileHeld(database.url, pool, {
    // What a reset does first: the new hash, every session ended; the challenge, met first, stays used.
    hold: async holder => {
      await holder.query('UPDATE "User" SET "passwordHash" = \'$argon2id$v=19$m=19456,t=2,p=1$replaced$replaced\' WHERE id = $1', [account.user.id])
      await holder.query('UPDATE "Session" SET "revokedAt" = now() WHERE "userId" = $1 AND "revokedAt" IS NULL', [account.user.id])
    },
    // The second step takes the user's row before its challenge (lockUser).
    waitingStatement: '%FROM "User" WHERE id = $1::uuid FOR UPDATE%'
  }, async () => await verify({ mfaToken, code: nextCode(account.secret, clock) }))
  t.equal(response.statusCode, 401)
  t.equal(response.json().code, 'AUTH_INVALID_CREDENTIALS')
  t.equal(await prisma.session.count({ where: { userId: account.user.id, revokedAt: null } }), 0, 'no session survives')
})

t.test('a challenge being met while an admin deletes the user: no deadlock', {
  skip: database.poolSize === 1 && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
}, async t => {
  const admin = await loginAsAdmin(app, prisma)
  const account = await enrolledAccount()
  const mfaToken = await challengeOf(account)
  clock.advance(30)
  // The factor's row held a moment: the deletion's cascade waits for it, then the second step
  // (its challenge locked) waits behind the deletion; both are under way when it is let go.
  const [deletion, met] = await racedWhileHeld(database.url, pool, {
    hold: async holder => await holder.query('SELECT 1 FROM "TotpFactor" WHERE "userId" = $1::uuid FOR UPDATE', [account.user.id]),
    waitingStatement: '%DELETE FROM "public"."User"%'
  },
  async () => await app.inject({ method: 'DELETE', url: `/admin/users/${account.user.id}`, headers: admin.headers }),
  async () => await verify({ mfaToken, code: nextCode(account.secret, clock) }))
  t.equal(deletion.statusCode, 204, 'the deletion')
  t.not(met.statusCode, 503, `the second step: ${met.statusCode}`)
})

t.test('a password reset committed while a login with a factor checks the old password wins: no challenge is issued', {
  skip: database.poolSize === 1 && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
}, async t => {
  const account = await enrolledAccount()
  const response = await whileHeld(database.url, pool, {
    // What a reset does: the new hash, the challenges and sessions of the old password ended.
    hold: async holder => {
      await holder.query('UPDATE "User" SET "passwordHash" = \'$argon2id$v=19$m=19456,t=2,p=1$replaced$replaced\' WHERE id = $1', [account.user.id])
      await holder.query('DELETE FROM "MfaChallenge" WHERE "userId" = $1 AND "usedAt" IS NULL', [account.user.id])
    },
    waitingStatement: '%INSERT INTO "MfaChallenge"%'
  }, async () => await startLogin(app, account))
  t.equal(response.statusCode, 401)
  t.equal(response.json().code, 'AUTH_INVALID_CREDENTIALS')
  t.equal(await prisma.mfaChallenge.count({ where: { userId: account.user.id, usedAt: null } }), 0, 'nothing the old password could finish')
  const audited = await prisma.auditEvent.findFirst({ where: { subjectId: account.user.id, action: 'login.failed' }, orderBy: { createdAt: 'desc' } })
  t.match(audited?.details, { reason: 'account_changed' })
})

t.test('bad input is 400 in the catalogue shape, and changes nothing', async t => {
  const account = await enrolledAccount()
  const mfaToken = await challengeOf(account)
  const cases: Array<[string, unknown]> = [
    ['no proof', { mfaToken }],
    ['two proofs', { mfaToken, code: '123456', recoveryCode: 'abcd-efgh' }],
    ['no token', { code: '123456' }],
    ['letters for a code', { mfaToken, code: 'abcdef' }],
    ['seven digits', { mfaToken, code: '1234567' }],
    ['a number', { mfaToken, code: 123456 }],
    ['an unknown field', { mfaToken, code: '123456', remember: true }],
    ['an unknown transport', { mfaToken, code: '123456', transport: 'body' }],
    ['a recovery code with symbols', { mfaToken, recoveryCode: 'abcd;efgh' }],
    ['null', null]
  ]
  for (const [name, payload] of cases) {
    const response = await app.inject({ method: 'POST', url: '/auth/mfa/verify', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(payload) })
    t.equal(response.statusCode, 400, name)
    t.match(response.json(), { statusCode: 400, code: 'VALIDATION_FAILED', error: 'Bad Request' }, name)
  }
  const headers = bearer(account.tokens.accessToken)
  for (const [url, payload] of [
    ['/auth/mfa/totp/confirm', { code: '12345' }],
    ['/auth/mfa/totp', { currentPassword: account.password, secret: 'mine' }],
    ['/auth/mfa/totp', {}],
    ['/auth/mfa/recovery-codes', { currentPassword: account.password, count: 20 }],
    ['/auth/mfa/recovery-codes', {}],
    ['/auth/reauthenticate', { password: 'x', code: '123456' }],
    ['/auth/reauthenticate', {}]
  ] as const) {
    const response = await app.inject({ method: 'POST', url, headers, payload })
    t.equal(response.statusCode, 400, `${url} ${JSON.stringify(payload)}`)
    t.equal(response.json().code, 'VALIDATION_FAILED')
  }
  t.equal((await verify({ mfaToken, code: nextCode(account.secret, clock) })).statusCode, 200, 'the challenge survived them all')
})

t.test('the enrolment routes need a signed-in caller', async t => {
  for (const [method, url] of [['POST', '/auth/mfa/totp'], ['POST', '/auth/mfa/totp/confirm'], ['DELETE', '/auth/mfa/totp'], ['POST', '/auth/mfa/recovery-codes'], ['POST', '/auth/reauthenticate']] as const) {
    const response = await app.inject({ method, url, payload: {} })
    t.equal(response.statusCode, 401, `${method} ${url}`)
    t.equal(response.json().code, 'AUTH_REQUIRED')
  }
})

t.test('GET and PATCH /users/me report the second factor alike: one rule in SQL and in Prisma (regression: only GET was checked)', async t => {
  const account = await registerProvenAccount(app, prisma)
  const headers = bearer((await loginWithBody(app, account)).accessToken)
  const agree = async (expected: { totp: boolean, recoveryCodesLeft: number }, state: string) => {
    const read = (await me(headers)).json().mfa
    const written = (await app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { profile: { bio: state } } })).json().mfa
    t.same(read, expected, `${state}: GET`)
    t.same(written, expected, `${state}: PATCH`)
  }
  await agree({ totp: false, recoveryCodesLeft: 0 }, 'no factor')
  await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers, payload: { currentPassword: account.password } })
  await agree({ totp: false, recoveryCodesLeft: 0 }, 'a factor not yet confirmed')
  const { recoveryCodes } = await enrolTotp(app, headers, clock, account.password)
  await agree({ totp: true, recoveryCodesLeft: 10 }, 'confirmed')
  t.equal((await app.inject({ method: 'POST', url: '/auth/reauthenticate', headers, payload: { recoveryCode: recoveryCodes[0] } })).statusCode, 200)
  await agree({ totp: true, recoveryCodesLeft: 9 }, 'a code used')
})
