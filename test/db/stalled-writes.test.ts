// A write that waits past DATABASE_QUERY_TIMEOUT_SECONDS (a lock held, storage stalled) is cancelled by the server: the 503 wrote nothing, and sending it again is safe.
import { setTimeout as sleep } from 'node:timers/promises'
import type { InjectOptions, LightMyRequestResponse as Response } from 'fastify'
import t, { type Test } from 'tap'
import { loginAsAdmin } from '../helpers/admin.js'
import { buildTestApp } from '../helpers/app.js'
import { withClient } from '../helpers/database.js'
import { dropConnectionOf, whileHeld } from '../helpers/locks.js'
import { enrolTotp, nextCode, startLogin } from '../helpers/mfa.js'
import { registerPasskey } from '../helpers/passkeys.js'
import { loginWithBody, registerAccount, registerProvenAccount } from '../helpers/users.js'

const { app, prisma, pool, database, clock } = await buildTestApp(t, { env: { DATABASE_QUERY_TIMEOUT_SECONDS: '1' } })
const onServer = database.poolSize > 1

/** Runs `work` while another connection holds the rows `lock` locks, then lets them go and waits a moment for what the server would still commit. */
async function whileLocked<T> (lock: string, values: unknown[], work: () => Promise<T>): Promise<T> {
  const result = await withClient(database.url, async holder => {
    await holder.query('BEGIN')
    await holder.query(lock, values)
    try {
      return await work()
    } finally {
      await holder.query('ROLLBACK')
    }
  })
  await sleep(300)
  return result
}

/**
 * `send`'s answer when its insert into `table` (the rows `when` holds for, a trigger's condition)
 * waits for a lock the test holds and its connection is dropped there, as in a failover.
 */
async function cutAsItInserts<T> (table: string, when: string, send: () => Promise<T>): Promise<T> {
  await pool.query('CREATE FUNCTION wait_for_the_test () RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NEW; END $$')
  await pool.query(`CREATE TRIGGER wait_for_the_test BEFORE INSERT ON "${table}" FOR EACH ROW WHEN (${when}) EXECUTE FUNCTION wait_for_the_test()`)
  return await whileHeld(database.url, pool, {
    hold: async holder => await holder.query('SELECT pg_advisory_xact_lock(4242)'),
    waitingStatement: `%"${table}"%`,
    meanwhile: dropConnectionOf(pool, `%"${table}"%`)
  }, send).finally(async () => await pool.query(`DROP TRIGGER wait_for_the_test ON "${table}"; DROP FUNCTION wait_for_the_test`))
}

/** An action, as sent, whether what it changes is there, and what the test keeps of its answer once it succeeds. */
interface AuditedAction { request: InjectOptions, done: () => Promise<boolean>, keep?: (answer: Response) => void }

/**
 * Each action sent while its audit entry's insert waits for a lock the test holds, and its
 * connection dropped there: 503, nothing done and nothing recorded; sent again, both. `subjectId`
 * counts only the entries about that user.
 */
async function cutAtTheirAuditEntries (t: Test, actions: Record<string, AuditedAction>, headers: Record<string, string>, subjectId?: string): Promise<void> {
  const recorded = async (action: string) => await prisma.auditEvent.count({ where: { action, ...(subjectId === undefined ? {} : { subjectId }) } })
  await pool.query('CREATE FUNCTION wait_for_the_test () RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NEW; END $$')
  await pool.query(`CREATE TRIGGER wait_for_the_test BEFORE INSERT ON "AuditEvent" FOR EACH ROW WHEN (NEW.action IN (${Object.keys(actions).map(action => `'${action}'`).join(', ')})) EXECUTE FUNCTION wait_for_the_test()`)
  try {
    for (const [action, { request, done, keep }] of Object.entries(actions) as Array<[string, AuditedAction]>) {
      const send = () => app.inject({ ...request, headers })
      const cut = await whileHeld(database.url, pool, {
        hold: async holder => await holder.query('SELECT pg_advisory_xact_lock(4242)'),
        waitingStatement: '%"AuditEvent"%',
        meanwhile: dropConnectionOf(pool, '%"AuditEvent"%')
      }, send)
      t.equal(cut.statusCode, 503, action)
      t.notOk(await done(), `${action}: nothing done`)
      t.equal(await recorded(action), 0, `${action}: nothing recorded`)
      const retried = await send()
      t.ok(retried.statusCode < 300, `${action}: the retry succeeds`)
      keep?.(retried)
      t.ok(await done(), `${action}: done`)
      t.equal(await recorded(action), 1, `${action}: and recorded`)
    }
  } finally {
    await pool.query('DROP TRIGGER wait_for_the_test ON "AuditEvent"; DROP FUNCTION wait_for_the_test')
  }
}

// Regression: pg's client-side timeout alone answered 503 and left the statement to run on;
// it committed once the lock was released, and the refresh retried as docs/api.md says was taken
// for a stolen token (the session ended, a false reuse in the audit trail).
t.test('a refresh stalled on its session\'s row: 503, no rotation afterwards, and the retry succeeds', { skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }, async t => {
  const account = await registerAccount(app)
  const { refreshToken } = await loginWithBody(app, account)
  const sessionId = refreshToken.split('.')[0]
  const stalled = await whileLocked('SELECT 1 FROM "Session" WHERE id = $1::uuid FOR UPDATE', [sessionId],
    () => app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken } }))
  t.equal(stalled.statusCode, 503)
  t.equal(stalled.json().code, 'SERVICE_UNAVAILABLE')
  t.equal((await prisma.session.findUniqueOrThrow({ where: { id: sessionId } })).generation, 0, 'not rotated after the answer')
  const retried = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken } })
  t.equal(retried.statusCode, 200, 'the retry rotates')
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'refresh.reuse_detected' } }), 0, 'no reuse recorded')
})

t.test('a login stalled on its user\'s row: 503, and no session opened afterwards', { skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }, async t => {
  const account = await registerAccount(app)
  const stalled = await whileLocked('SELECT 1 FROM "User" WHERE id = $1::uuid FOR UPDATE', [account.user.id],
    () => app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } }))
  t.equal(stalled.statusCode, 503)
  t.equal(await prisma.session.count({ where: { userId: account.user.id } }), 0, 'no session nobody holds tokens for')
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'login.succeeded' } }), 0)
})

// Regression: a transaction whose client fell silent after taking a lock (a partition, a frozen
// host) kept it until the server's TCP keep-alive gave up, hours later; every instance waited.
t.test('a transaction whose client falls silent holding a user\'s row is ended by the server: the user logs in again', { skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }, async t => {
  const account = await registerAccount(app)
  const silent = await pool.connect()
  // The server's notice, then the end of the connection: both are 'error' events.
  const ended = new Promise<Error>(resolve => silent.on('error', resolve))
  await silent.query('BEGIN')
  await silent.query('SELECT 1 FROM "User" WHERE id = $1::uuid FOR UPDATE', [account.user.id])
  await sleep(1500)
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } })
  t.equal(login.statusCode, 200, 'the row is free again')
  t.match(await ended, /idle-in-transaction timeout/, 'the server ended the silent session')
  silent.release(true)
})

// Regression: the recovery code was spent in a statement of its own; the notice's insert that
// failed after it left the code used, no mail and no audit entry, and the retry refused.
t.test('a reauthentication with a recovery code cut off as it writes: 503, the code unspent, and the retry succeeds', { skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }, async t => {
  const account = await registerProvenAccount(app, prisma)
  const headers = { authorization: `Bearer ${(await loginWithBody(app, account)).accessToken}` }
  const [code] = (await enrolTotp(app, headers, clock, account.password)).recoveryCodes
  const reauthenticate = () => app.inject({ method: 'POST', url: '/auth/reauthenticate', headers, payload: { recoveryCode: code } })
  // Cut at the notice's insert.
  const cut = await cutAsItInserts('OutboxMail', 'true', reauthenticate)
  t.equal(cut.statusCode, 503)
  t.equal(await prisma.recoveryCode.count({ where: { userId: account.user.id, usedAt: { not: null } } }), 0, 'the code is unspent')
  t.equal((await reauthenticate()).statusCode, 200, 'the retry succeeds')
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'mfa.recovery_code_used' } }), 1, 'audited once')
})

// Regression: the second step spent the recovery code in its own transaction and opened the
// session in a statement after it; a 503 in between left the code spent, no session, and a retry
// refused (MFA_CHALLENGE_EXPIRED, and the code itself MFA_CODE_INVALID at the next login).
t.test('a second step whose session cannot open after its code was spent: 503, and the retry opens the session without spending another', { skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }, async t => {
  const account = await registerProvenAccount(app, prisma)
  const headers = { authorization: `Bearer ${(await loginWithBody(app, account)).accessToken}` }
  const [code, another] = (await enrolTotp(app, headers, clock, account.password)).recoveryCodes
  const spent = async () => await prisma.recoveryCode.count({ where: { userId: account.user.id, usedAt: { not: null } } })
  const secondStep = async (mfaToken: string, recoveryCode?: string) => await app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfaToken, recoveryCode } })
  const challenge = async () => (await startLogin(app, account)).json().mfaToken as string
  const stalledAtTheSession = async (mfaToken: string, recoveryCode?: string) => await whileLocked('LOCK TABLE "Session" IN SHARE MODE', [], () => secondStep(mfaToken, recoveryCode))

  const mfaToken = await challenge()
  t.equal((await stalledAtTheSession(mfaToken, code)).statusCode, 503)
  t.equal(await spent(), 1, 'the code was spent with the challenge')
  const retried = await secondStep(mfaToken, code)
  t.equal(retried.statusCode, 200, 'the retry opens the session')
  t.equal(await prisma.session.count({ where: { id: retried.json().sessionId, revokedAt: null } }), 1)
  t.equal(await spent(), 1, 'and spends nothing more')
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'mfa.recovery_code_used' } }), 1, 'audited once')
  t.equal((await secondStep(mfaToken, code)).json().code, 'MFA_CHALLENGE_EXPIRED', 'once open, the challenge is over')

  const voided = await challenge()
  t.equal((await stalledAtTheSession(voided, another)).statusCode, 503)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers: { authorization: `Bearer ${retried.json().accessToken as string}` } })).statusCode, 204)
  t.equal((await secondStep(voided, another)).json().code, 'MFA_CHALLENGE_EXPIRED', 'a remedy since ends a challenge met and not yet opened, as one not met')
})

// Regression: the second step wrote a recovery code's audit entry after spending it, so a failure
// there lost the entry for good (and a step resumed after a 503 did not write it either).
t.test('a second step whose recovery code\'s audit entry cannot be written spends nothing: 503, and the retry does both', { skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }, async t => {
  const account = await registerProvenAccount(app, prisma)
  const [code] = (await enrolTotp(app, { authorization: `Bearer ${(await loginWithBody(app, account)).accessToken}` }, clock, account.password)).recoveryCodes
  const mfaToken = (await startLogin(app, account)).json().mfaToken as string
  const secondStep = async () => await app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfaToken, recoveryCode: code } })
  const cut = await cutAsItInserts('AuditEvent', 'NEW.action = \'mfa.recovery_code_used\'', secondStep)
  t.equal(cut.statusCode, 503)
  t.equal(await prisma.recoveryCode.count({ where: { userId: account.user.id, usedAt: { not: null } } }), 0, 'the code is unspent')
  t.equal((await secondStep()).statusCode, 200, 'the retry signs in')
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'mfa.recovery_code_used' } }), 1, 'audited once')
})

// Regression: these admin actions wrote their audit entry after their commit: a failure there
// left the change done and unrecorded (a factor removed, a session ended, a reset mailed).
t.test('an admin action whose audit entry cannot be written changes nothing: 503, and the retry does both', { skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }, async t => {
  const admin = await loginAsAdmin(app, prisma)
  const target = await registerProvenAccount(app, prisma)
  const session = await loginWithBody(app, target)
  await enrolTotp(app, { authorization: `Bearer ${session.accessToken}` }, clock, target.password)
  const sessionId = session.refreshToken.split('.')[0] as string
  const url = `/admin/users/${target.user.id}`
  const actions = {
    'session.revoked': {
      request: { method: 'DELETE', url: `${url}/sessions/${sessionId}` },
      done: async () => (await prisma.session.findUniqueOrThrow({ where: { id: sessionId } })).revokedAt !== null
    },
    'mfa.removed_by_admin': {
      request: { method: 'DELETE', url: `${url}/mfa` },
      done: async () => await prisma.totpFactor.count({ where: { userId: target.user.id } }) === 0
    },
    'password.reset_sent': {
      request: { method: 'POST', url: `${url}/password-reset` },
      // Queued, or already delivered: its link issued.
      done: async () => await prisma.outboxMail.count({ where: { kind: 'password_reset' } }) + await prisma.oneTimeToken.count({ where: { userId: target.user.id, purpose: 'password_reset' } }) > 0
    },
    'settings.changed': {
      request: { method: 'PUT', url: '/admin/settings', payload: { accessTokenTtlSeconds: 600 } },
      done: async () => (await app.inject({ method: 'GET', url: '/admin/settings', headers: admin.headers })).json().accessTokenTtlSeconds === 600
    }
  } satisfies Record<string, AuditedAction>
  await cutAtTheirAuditEntries(t, actions, admin.headers)
})

// Regression: the users' own actions wrote their audit entry after their commit: a process
// ended, or a connection lost, in between left the change unrecorded.
t.test('a user\'s own action whose audit entry cannot be written changes nothing: 503, and the retry does both', { skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }, async t => {
  const owner = await registerProvenAccount(app, prisma)
  const headers = { authorization: `Bearer ${(await loginWithBody(app, owner)).accessToken}` }
  const { secret } = await enrolTotp(app, headers, clock, owner.password)
  const passkey = await registerPasskey(app, headers, owner.password, 'Laptop')
  const passwords = ['a changed passphrase 31', 'a changed passphrase 32']
  const codesBefore = await prisma.recoveryCode.findMany({ where: { userId: owner.user.id }, select: { codeHash: true } })
  const provenAt = async () => (await prisma.session.findFirstOrThrow({ where: { userId: owner.user.id, revokedAt: null }, orderBy: { createdAt: 'asc' } })).totpProvenAt?.getTime()
  const loginProof = await provenAt()
  const actions = {
    'reauthentication.succeeded': {
      // Beside a factor, a factor: the first attempt's 503 spends no time step, so its retry sends the same code.
      request: { method: 'POST', url: '/auth/reauthenticate', payload: { code: nextCode(secret, clock) } },
      done: async () => await provenAt() !== loginProof,
      // The new access token is the fresh one.
      keep: answer => { headers.authorization = `Bearer ${answer.json<{ accessToken: string }>().accessToken}` }
    },
    'passkey.renamed': {
      request: { method: 'PATCH', url: `/auth/passkeys/${passkey.id}`, payload: { name: 'Phone' } },
      done: async () => (await prisma.passkey.findUniqueOrThrow({ where: { id: passkey.id } })).name === 'Phone'
    },
    'mfa.recovery_codes_regenerated': {
      request: { method: 'POST', url: '/auth/mfa/recovery-codes', payload: { currentPassword: owner.password } },
      done: async () => !(await prisma.recoveryCode.findMany({ where: { userId: owner.user.id }, select: { codeHash: true } })).some(code => code.codeHash === codesBefore[0]?.codeHash)
    },
    // Before the app's removal: the session proved the app, and a proof of a factor gone makes no session fresh.
    'passkey.removed': {
      request: { method: 'DELETE', url: `/auth/passkeys/${passkey.id}` },
      done: async () => await prisma.passkey.count({ where: { id: passkey.id } }) === 0
    },
    'mfa.totp_removed': {
      request: { method: 'DELETE', url: '/auth/mfa/totp' },
      done: async () => await prisma.totpFactor.count({ where: { userId: owner.user.id } }) === 0
    },
    'password.changed': {
      // The retry proves the password the first attempt would have set, had it committed: none did.
      request: { method: 'POST', url: '/auth/password/change', payload: { currentPassword: owner.password, newPassword: passwords[0] } },
      done: async () => (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: owner.email, password: passwords[0] } })).statusCode === 200
    },
    'user.deleted': {
      request: { method: 'DELETE', url: '/users/me', payload: { password: passwords[0] } },
      done: async () => await prisma.user.count({ where: { id: owner.user.id } }) === 0
    }
  } satisfies Record<string, AuditedAction>
  await cutAtTheirAuditEntries(t, actions, headers, owner.user.id)
})
