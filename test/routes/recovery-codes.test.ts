// Recovery codes belong to the account's second factors as a whole: an account with passkeys only
// gets them too, they stay while any factor does, and go with the last.
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { loginAsAdmin } from '../helpers/admin.js'
import { startMailServer } from '../helpers/mail.js'
import { claimsOf, enrolTotp, startLogin } from '../helpers/mfa.js'
import { registerPasskey } from '../helpers/passkeys.js'
import { hashRecoveryCode } from '../../src/services/mfa/recovery-codes.js'
import { loginWithBody, registerProvenAccount } from '../helpers/users.js'

const mail = await startMailServer(t)
const { app, prisma, clock } = await buildTestApp(t, { env: { REQUIRE_MFA_FOR_ADMINS: 'true', SMTP_URL: mail.url } })

const bearer = (accessToken: string) => ({ authorization: `Bearer ${accessToken}` })
const post = (url: string, payload?: object, headers: Record<string, string> = {}) => app.inject({ method: 'POST', url, headers, ...(payload === undefined ? {} : { payload }) })

async function accountWithPasskey () {
  const account = await registerProvenAccount(app, prisma)
  const headers = bearer((await loginWithBody(app, account)).accessToken)
  const passkey = await registerPasskey(app, headers, account.password, 'Laptop')
  return { ...account, passkey, headers }
}

async function newCodes (headers: Record<string, string>, currentPassword: string): Promise<string[]> {
  const made = await post('/auth/mfa/recovery-codes', { currentPassword }, headers)
  if (made.statusCode !== 200) throw new Error(`recovery codes: ${made.statusCode} ${made.body}`)
  return made.json().recoveryCodes
}

/** A password login met with a recovery code. */
async function signInWithCode (account: { email: string, password: string }, recoveryCode: string) {
  const { mfaToken } = (await startLogin(app, account)).json()
  return await post('/auth/mfa/verify', { mfaToken, recoveryCode })
}

const unusedCodes = async (userId: string) => await prisma.recoveryCode.count({ where: { userId, usedAt: null } })

// Regression: refused with 409 MFA_NOT_ENABLED; such an account's only way back from a lost passkey was an admin.
t.test('an account with a passkey alone gets recovery codes: they meet the login\'s second step and reauthentication', async t => {
  const account = await accountWithPasskey()
  t.same((await startLogin(app, account)).json().methods, ['webauthn'], 'none offered before any are made')
  const codes = await newCodes(account.headers, account.password)
  t.equal(codes.length, 10)
  t.match((await mail.nextMail(account.email, { subject: /^New recovery codes$/ })).text, /New recovery codes were made/)
  t.same((await startLogin(app, account)).json().methods, ['recovery_code', 'webauthn'])

  const signedIn = await signInWithCode(account, codes[0] as string)
  t.equal(signedIn.statusCode, 200, signedIn.body)
  t.same(claimsOf(signedIn.json().accessToken).amr, ['pwd', 'mfa'])
  const headers = bearer(signedIn.json().accessToken)
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers })).json().mfa.recoveryCodesLeft, 9)

  clock.advance(601)
  const stale = await post('/auth/mfa/recovery-codes', { currentPassword: account.password }, headers)
  t.equal(stale.json().code, 'REAUTHENTICATION_REQUIRED')
  t.same(stale.json().methods, ['recovery_code', 'webauthn'])
  const renewed = await post('/auth/reauthenticate', { recoveryCode: codes[1] }, headers)
  t.equal(renewed.statusCode, 200)
  t.equal((await post('/auth/mfa/recovery-codes', { currentPassword: account.password }, bearer(renewed.json().accessToken))).statusCode, 200, 'fresh again by a code')
})

t.test('the codes go with the last factor: removing a passkey keeps them while another is left, and the last takes them', async t => {
  const account = await accountWithPasskey()
  const second = await registerPasskey(app, account.headers, account.password, 'Phone')
  const codes = await newCodes(account.headers, account.password)
  const remove = async (id: string) => await app.inject({ method: 'DELETE', url: `/auth/passkeys/${id}`, headers: account.headers })

  t.equal((await remove(account.passkey.id)).statusCode, 204)
  t.equal(await unusedCodes(account.user.id), 10, 'a passkey is left: the codes stay')
  t.notMatch((await mail.nextMail(account.email, { subject: /^A passkey was removed$/ })).text, /last second factor/)

  t.equal((await remove(second.id)).statusCode, 204)
  t.equal(await prisma.recoveryCode.count({ where: { userId: account.user.id } }), 0, 'the last passkey takes them')
  t.match((await mail.nextMail(account.email, { subject: /^A passkey was removed$/ })).text, /last second factor of your account: signing in now asks for your password only/)
  const login = await startLogin(app, account)
  t.equal(login.json().mfaRequired, undefined, 'the password alone signs in')
  t.equal((await post('/auth/reauthenticate', { recoveryCode: codes[0] }, bearer(login.json().accessToken))).json().code, 'MFA_NOT_ENABLED')
  // The upgrade's catch-up tells this release's removals from an older one's by this mark.
  const marks = await prisma.auditEvent.findMany({ where: { subjectId: account.user.id, action: 'passkey.removed' }, orderBy: { createdAt: 'asc' }, select: { details: true } })
  t.same(marks.map(mark => (mark.details as { recoveryCodes?: string }).recoveryCodes), ['kept', 'ended'])
})

// Regression: the mail said two-step sign-in was off, and signing in asked for the password only.
t.test('with a passkey left, removing the authenticator app keeps the codes, and its mail says the passkeys remain', async t => {
  const account = await accountWithPasskey()
  const { recoveryCodes } = await enrolTotp(app, account.headers, clock, account.password)
  t.equal((await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers: account.headers })).statusCode, 204)
  const notice = await mail.nextMail(account.email, { subject: /^(Your authenticator app was removed|Two-step sign-in is off)$/ })
  t.equal(notice.subject, 'Your authenticator app was removed')
  t.match(notice.text, /Your passkeys remain your second factor/)
  t.equal(await unusedCodes(account.user.id), 10)
  t.same((await startLogin(app, account)).json().methods, ['recovery_code', 'webauthn'])
  t.equal((await signInWithCode(account, recoveryCodes[0] as string)).statusCode, 200, 'a code of the app\'s set still signs in')

  const alone = await registerProvenAccount(app, prisma)
  const aloneHeaders = bearer((await loginWithBody(app, alone)).accessToken)
  await enrolTotp(app, aloneHeaders, clock, alone.password)
  t.equal((await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers: aloneHeaders })).statusCode, 204)
  t.match((await mail.nextMail(alone.email, { subject: /^Two-step sign-in is off$/ })).text, /password only/, 'without a passkey, two-step sign-in is off')
  t.equal(await prisma.recoveryCode.count({ where: { userId: alone.user.id } }), 0)
})

t.test('an authenticator app confirmed later replaces a passkey\'s codes, and its mail says so; with none unused, none is offered', async t => {
  const account = await accountWithPasskey()
  const first = await newCodes(account.headers, account.password)
  const { recoveryCodes } = await enrolTotp(app, account.headers, clock, account.password)
  // Regression: "Two-step sign-in is on ... Keep your recovery codes somewhere safe", of codes it had just ended.
  const notice = await mail.nextMail(account.email, { subject: /^(An authenticator app was added|Two-step sign-in is on)$/ })
  t.equal(notice.subject, 'An authenticator app was added')
  t.match(notice.text, /beside your passkeys.*New recovery codes were made with it, and the earlier ones no longer work/s)
  t.equal((await signInWithCode(account, first[0] as string)).json().code, 'MFA_CODE_INVALID', 'the earlier set died')
  t.equal((await signInWithCode(account, recoveryCodes[0] as string)).statusCode, 200)

  await prisma.recoveryCode.updateMany({ where: { userId: account.user.id }, data: { usedAt: clock.now() } })
  t.same((await startLogin(app, account)).json().methods, ['totp', 'webauthn'])
})

t.test('REQUIRE_MFA_FOR_ADMINS: a recovery code proves an admin\'s passkey-only second factor, until the factors it stood for are gone', async t => {
  const admin = await loginAsAdmin(app, prisma)
  const passkey = await registerPasskey(app, admin.headers, admin.password)
  const codes = await newCodes(admin.headers, admin.password)
  const signedIn = await signInWithCode(admin, codes[0] as string)
  const headers = bearer(signedIn.json().accessToken)
  const adminCall = async () => (await app.inject({ method: 'GET', url: '/admin/users?limit=1', headers })).statusCode
  t.equal(await adminCall(), 200, 'the code counts for the passkey it stands in for')

  await enrolTotp(app, headers, clock, admin.password)
  t.equal((await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers: admin.headers })).statusCode, 204)
  t.equal(await adminCall(), 200, 'nor after an app came and went beside the passkey')
  const regenerated = await newCodes(admin.headers, admin.password)
  t.equal(await adminCall(), 200, 'nor after new codes were made: they stand in for the same factors')

  t.equal((await app.inject({ method: 'DELETE', url: `/auth/passkeys/${passkey.id}`, headers })).statusCode, 204)
  // Regression: a factor whose time read earlier than the code's proof (a clock stepped back,
  // another instance behind, a confirmation that waited its turn) let the code count for it.
  clock.advance(-3)
  await registerPasskey(app, admin.headers, admin.password)
  t.equal((await app.inject({ method: 'GET', url: '/admin/users?limit=1', headers })).json().code, 'MFA_ENROLMENT_REQUIRED', 'not for a factor set up after its set was gone')
  t.equal((await post('/auth/reauthenticate', { recoveryCode: regenerated[0] }, admin.headers)).json().code, 'MFA_CODE_INVALID', 'and its codes went with the last factor')
  clock.advance(3)
})

// An older release beside this one (a rolling upgrade) removes a last passkey and keeps its codes.
t.test('codes left behind by a factor removed elsewhere do not stand in for the next one', async t => {
  const account = await registerProvenAccount(app, prisma)
  const headers = bearer((await loginWithBody(app, account)).accessToken)
  const left = 'aaaa-bbbb-cccc-dddd'
  await prisma.recoveryCode.create({ data: { userId: account.user.id, codeHash: hashRecoveryCode(left) } })
  await registerPasskey(app, headers, account.password)
  t.equal(await prisma.recoveryCode.count({ where: { userId: account.user.id } }), 0)
  t.same((await startLogin(app, account)).json().methods, ['webauthn'])
  t.equal((await post('/auth/reauthenticate', { recoveryCode: left }, headers)).json().code, 'MFA_CODE_INVALID')
})

// Regression: an older release beside this one (a rolling upgrade) removed the app and its codes
// without ending their generation, and an app confirmed next let the old code count again.
t.test('a first factor confirmed after factors went by another way starts a new generation of codes', async t => {
  const admin = await loginAsAdmin(app, prisma)
  const { recoveryCodes } = await enrolTotp(app, admin.headers, clock, admin.password)
  const signedIn = await signInWithCode(admin, recoveryCodes[0] as string)
  const headers = bearer(signedIn.json().accessToken)
  t.equal((await app.inject({ method: 'GET', url: '/admin/users?limit=1', headers })).statusCode, 200)
  await prisma.totpFactor.deleteMany({ where: { userId: admin.user.id } })
  await prisma.recoveryCode.deleteMany({ where: { userId: admin.user.id } })
  await enrolTotp(app, admin.headers, clock, admin.password)
  t.equal((await app.inject({ method: 'GET', url: '/admin/users?limit=1', headers })).json().code, 'MFA_ENROLMENT_REQUIRED')
})
