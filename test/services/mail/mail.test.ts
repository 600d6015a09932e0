// The mail outbox with a real SMTP server: retries with backoff while it is down or hung, a bound on attempts, a stable Message-ID, the log in development, several instances.
import { randomUUID } from 'node:crypto'
import { createServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import pg from 'pg'
import { pino } from 'pino'
import { SMTPServer } from 'smtp-server'
import t from 'tap'
import { buildTestApp } from '../../helpers/app.js'
import { createTestDatabase } from '../../helpers/database.js'
import { whileHeld } from '../../helpers/locks.js'
import { logCapture, startMailServer, startScriptedRelay } from '../../helpers/mail.js'
import { registerPasskey } from '../../helpers/passkeys.js'
import { until } from '../../helpers/until.js'
import { loginWithBody, newAccount, registerAccount, registerProvenAccount } from '../../helpers/users.js'
import { LEASE_SECONDS } from '../../../src/services/mail/delivery.js'
import { createMailRenderer } from '../../../src/services/mail/rendering.js'
import { createMailSender } from '../../../src/services/mail/sender.js'
import { escapeHtml, linkFor, mask, passwordResetMail, verifyEmailMail } from '../../../src/services/mail/templates.js'

const VERIFY = /^Confirm your email address$/
const METRICS_TOKEN = 'mail-test-metrics-token-0123456789'
const mail = await startMailServer(t)
const capture = logCapture()
const { app, prisma, pool, clock, database } = await buildTestApp(t, {
  env: { SMTP_URL: mail.url, MAIL_MAX_ATTEMPTS: '3', MAIL_RETRY_BASE_SECONDS: '30', METRICS_TOKEN },
  logger: pino({ level: 'info' }, capture.stream)
})

const linesSaying = (message: string) => capture.lines.filter(line => line.msg === message)
async function deliveries (outcome: string, on = app): Promise<number> {
  const text = (await on.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).body
  return Number(new RegExp(`^auth_mail_deliveries_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)?.[1])
}

t.test('SMTP down, then up: the mail waits in the outbox, retried with backoff, and arrives once', async t => {
  await mail.down()
  const account = await registerAccount(app)
  await app.mailer.flush()
  const [queued] = await prisma.outboxMail.findMany({ where: { recipient: account.email } })
  t.match(queued, { kind: 'verify_email', attempts: 1 }, 'kept after a failed attempt')
  t.equal(queued?.data, null, 'no secret in the outbox: the link is derived at delivery')
  t.match(linesSaying('mail not sent; will retry').at(-1), { level: 40, attempts: 1, retryInSeconds: 30, domain: 'example.com' })
  clock.advance(29)
  await app.mailer.flush()
  t.equal((await prisma.outboxMail.findFirstOrThrow({ where: { recipient: account.email } })).attempts, 1, 'not tried again before its time')
  clock.advance(1)
  await app.mailer.flush()
  t.match(linesSaying('mail not sent; will retry').at(-1), { attempts: 2, retryInSeconds: 60 }, 'the wait doubles')

  await mail.up()
  clock.advance(60)
  await app.mailer.flush()
  const received = await mail.nextMail(account.email, { subject: VERIFY })
  t.equal(received.messageId, `<${queued?.id}@localhost>`, 'the Message-ID is the outbox row\'s: the same at every attempt')
  const verified = await app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: received.token } })
  t.equal(verified.statusCode, 204, 'the link issued before the outage works')
  t.equal(await prisma.outboxMail.count({ where: { recipient: account.email } }), 0, 'gone once sent')
  await app.mailer.flush()
  t.same(mail.untaken(account.email), [], 'sent once')
  t.ok(await deliveries('sent') >= 1)
})

t.test('after MAIL_MAX_ATTEMPTS the mail is given up: one error line and the metric', async t => {
  const givenUp = await deliveries('given_up')
  await mail.down()
  t.teardown(mail.up)
  const account = await registerAccount(app)
  for (const wait of [0, 30, 60]) {
    clock.advance(wait)
    await app.mailer.flush()
  }
  t.equal(await prisma.outboxMail.count({ where: { recipient: account.email } }), 0, 'no longer in the outbox')
  const [line] = linesSaying('mail given up').filter(l => l.kind === 'verify_email' && l.attempts === 3)
  t.match(line, { level: 50, component: 'mail', domain: 'example.com', code: /^E[A-Z]+$/ })
  t.equal(await deliveries('given_up'), givenUp + 1)
  t.notOk(capture.text().includes(account.email), 'no address in the log')
})

t.test('a permanent refusal (5xx) is final at once', async t => {
  await registerAccount(app, { ...newAccount(), email: `rejected-${Date.now()}@example.org` })
  await app.mailer.flush()
  t.match(linesSaying('mail given up').at(-1), { attempts: 1, responseCode: 550, domain: 'example.org' })
})

t.test('a 5xx about the relay, not the mail (at the greeting, to the sender, a policy\'s refusal of the recipient), waits for a retry; the mail goes once the relay is mended (regression: given up at once, reset links included); a policy\'s refusal of the content is final', async t => {
  let refusing: 'greeting' | 'sender' | 'relaying' | 'content' | null = 'greeting'
  const accepted: string[] = []
  const refusal = (message: string, responseCode: number) => Object.assign(new Error(message), { responseCode })
  const smtpUrl = await startScriptedRelay(t, {
    onConnect (_session, callback) { callback(refusing === 'greeting' ? refusal('No service here now', 554) : undefined) },
    onMailFrom (_address, _session, callback) { callback(refusing === 'sender' ? refusal('Sender not allowed', 550) : undefined) },
    onRcptTo (_address, _session, callback) { callback(refusing === 'relaying' ? refusal('5.7.1 Relaying denied', 550) : undefined) },
    onData (stream, session, callback) {
      stream.resume().on('end', () => {
        if (refusing === 'content') return callback(refusal('5.7.1 Message rejected as spam', 554))
        accepted.push(...session.envelope.rcptTo.map(r => r.address))
        callback()
      })
    }
  })
  const logs = logCapture()
  const relay = await buildTestApp(t, {
    env: { SMTP_URL: smtpUrl, MAIL_MAX_ATTEMPTS: '5', MAIL_RETRY_BASE_SECONDS: '30' },
    logger: pino({ level: 'info' }, logs.stream)
  })
  const recipient = newAccount().email
  await relay.prisma.outboxMail.create({ data: { id: randomUUID(), kind: 'mfa_enabled', recipient, nextAttemptAt: relay.clock.now() } })
  await relay.app.mailer.flush()
  refusing = 'sender'
  relay.clock.advance(30)
  await relay.app.mailer.flush()
  refusing = 'relaying'
  relay.clock.advance(60)
  await relay.app.mailer.flush()
  t.match(logs.lines.filter(line => line.msg === 'mail not sent; will retry'), [{ responseCode: 554, command: 'CONN', attempts: 1 }, { responseCode: 550, command: 'MAIL FROM', attempts: 2 }, { responseCode: 550, command: 'RCPT TO', attempts: 3 }], 'each retried, a policy\'s refusal of the recipient too (5.7.1)')
  t.same(logs.lines.filter(line => line.msg === 'mail given up'), [], 'none given up')
  refusing = null
  relay.clock.advance(120)
  await relay.app.mailer.flush()
  t.same(accepted, [recipient], 'sent once the relay is mended')
  t.equal(await relay.prisma.outboxMail.count(), 0)
  refusing = 'content'
  await relay.prisma.outboxMail.create({ data: { id: randomUUID(), kind: 'mfa_enabled', recipient, nextAttemptAt: relay.clock.now() } })
  await relay.app.mailer.flush()
  t.match(logs.lines.filter(line => line.msg === 'mail given up'), [{ responseCode: 554, command: 'DATA', attempts: 1 }], 'refused as spam: given up at once')
})

t.test('a stop cuts short the sends still under way after its grace, and leaves their mails due again at once (regression: it waited for them, past the shutdown\'s timeout, and the mail waited for its claim)', async t => {
  let dataStarted = () => {}
  const inData = new Promise<void>(resolve => { dataStarted = resolve })
  // A relay that takes the message and never answers it.
  const smtpUrl = await startScriptedRelay(t, { onData (stream) { stream.resume(); dataStarted() } })
  const logs = logCapture()
  const stalled = await buildTestApp(t, {
    env: { SMTP_URL: smtpUrl },
    logger: pino({ level: 'info' }, logs.stream)
  })
  const id = randomUUID()
  await stalled.prisma.outboxMail.create({ data: { id, kind: 'mfa_enabled', recipient: newAccount().email, nextAttemptAt: stalled.clock.now() } })
  const pass = stalled.app.mailer.flush()
  await inData
  const stopped = await Promise.race([stalled.app.mailer.stop(200).then(() => 'stopped'), new Promise(resolve => setTimeout(resolve, 10_000, 'still waiting'))])
  await pass
  t.equal(stopped, 'stopped', 'the stop does not wait for the relay\'s answer')
  const row = await stalled.prisma.outboxMail.findUniqueOrThrow({ where: { id } })
  t.ok(row.nextAttemptAt.getTime() <= stalled.clock.now().getTime(), 'due again at once, not when its claim expires')
  t.match(logs.lines.filter(line => line.msg === 'mail not sent before shutdown; due again now'), [{ level: 30, mailId: id, code: 'ESHUTDOWN' }])
  t.same(logs.lines.filter(line => line.msg === 'mail given up'), [])
})

t.test('a hung SMTP server fails the send, not the database: the mail is retried, then given up, and the pass waits for its whole batch', async t => {
  // The first connection is never greeted (a hung server); the second is, and its mail is
  // accepted a little after the first has been abandoned; any later one hangs again.
  let connections = 0
  let hungSession = ''
  let abandoned = () => {}
  const firstAbandoned = new Promise<void>(resolve => { abandoned = resolve })
  const accepted: string[] = []
  const smtpUrl = await startScriptedRelay(t, {
    onConnect (session, callback) {
      connections += 1
      if (connections === 1) hungSession = session.id
      if (connections === 2) callback()
    },
    onClose (session) { if (session.id === hungSession) abandoned() },
    onData (stream, session, callback) {
      stream.resume().on('end', () => {
        firstAbandoned.then(() => setTimeout(() => {
          accepted.push(...session.envelope.rcptTo.map(r => r.address))
          callback()
        }, 200), callback)
      })
    }
  })
  const logs = logCapture()
  const hung = await buildTestApp(t, {
    env: { SMTP_URL: `${smtpUrl}?greetingTimeout=1000`, MAIL_MAX_ATTEMPTS: '2', MAIL_RETRY_BASE_SECONDS: '30', METRICS_TOKEN },
    logger: pino({ level: 'info' }, logs.stream)
  })
  const saying = (message: string) => logs.lines.filter(line => line.msg === message)
  // Two mails due together, so that one pass sends both at once.
  const recipients = [newAccount().email, newAccount().email]
  await hung.prisma.outboxMail.createMany({ data: recipients.map(recipient => ({ id: randomUUID(), kind: 'mfa_enabled' as const, recipient, nextAttemptAt: hung.clock.now() })) })

  await hung.app.mailer.flush()
  t.equal(accepted.length, 1, 'the mail that got a greeting was sent')
  const left = await hung.prisma.outboxMail.findMany()
  t.equal(left.length, 1, 'and taken off the outbox before the pass ended')
  t.notOk(accepted.includes(left[0]?.recipient ?? ''), 'the hung one is left')
  t.match(saying('mail not sent; will retry'), [{ level: 40, code: 'ETIMEDOUT', attempts: 1, retryInSeconds: 30 }], 'the hung one waits for its retry')
  const retryIn = (left[0]?.nextAttemptAt.getTime() ?? 0) - hung.clock.now().getTime()
  t.ok(retryIn > 20_000 && retryIn <= 30_000, 'due again after the backoff (30 s), not when the claim expires (2 min)')

  hung.clock.advance(30)
  await hung.app.mailer.flush()
  t.match(saying('mail given up'), [{ level: 50, code: 'ETIMEDOUT', attempts: 2 }], 'given up after MAIL_MAX_ATTEMPTS')
  t.equal(await hung.prisma.outboxMail.count(), 0)
  t.equal(await deliveries('given_up', hung.app), 1)
  t.same(saying('mail delivery paused: the database is unavailable'), [], 'never taken for a database outage')
})

t.test('forgot for an address no account has: looked up at delivery, nothing sent, nothing left, the drop counted', async t => {
  const nobody = newAccount().email
  const dropped = await deliveries('dropped')
  const seen = capture.lines.length
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: nobody } })).statusCode, 202)
  await app.mailer.flush()
  t.equal(await prisma.outboxMail.count({ where: { recipient: nobody } }), 0)
  t.same(mail.untaken(nobody), [])
  t.equal(await deliveries('dropped'), dropped + 1)
  t.match(capture.lines.slice(seen).filter(line => String(line.msg).startsWith('mail dropped')),
    [{ level: 30, kind: 'password_reset', reason: 'no_active_account', msg: 'mail dropped: no active account has the address the reset was asked for' }], 'said with its reason')
})

t.test('a reset whose account is deactivated while its link is being made: no link, nothing sent, the drop counted with its reason', { skip: process.env.TEST_DATABASE_URL === undefined || process.env.TEST_DATABASE_URL === '' ? 'holding a row on another connection needs a PostgreSQL server' : false }, async t => {
  const account = await registerProvenAccount(app, prisma)
  await app.mailer.flush()
  const dropped = await deliveries('dropped')
  const seen = capture.lines.length
  // The delivery looks the account up, active, then waits for its row, which a deactivation holds.
  const forgot = await whileHeld(database.url, pool, {
    hold: async holder => await holder.query('SELECT 1 FROM "User" WHERE id = $1 FOR UPDATE', [account.user.id]),
    waitingStatement: '%FROM "User" WHERE id = %FOR UPDATE%',
    meanwhile: async holder => await holder.query('UPDATE "User" SET "isActive" = false WHERE id = $1', [account.user.id])
  }, async () => {
    const answer = await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })
    await app.mailer.flush()
    return answer
  })
  t.equal(forgot.statusCode, 202)
  t.same(mail.untaken(account.email).filter(received => /Reset your password/.test(received.subject ?? '')), [], 'no reset mail')
  t.equal(await prisma.oneTimeToken.count({ where: { userId: account.user.id, purpose: 'password_reset' } }), 0, 'no link left for the account to find once reactivated')
  t.equal(await prisma.outboxMail.count({ where: { recipient: account.email } }), 0, 'nothing left in the outbox')
  t.equal(await deliveries('dropped'), dropped + 1)
  t.match(capture.lines.slice(seen).filter(line => String(line.msg).startsWith('mail dropped')),
    [{ level: 30, kind: 'password_reset', reason: 'account_changed', msg: 'mail dropped: the account was deactivated, deleted or given another address as its reset link was being made' }], 'said with its reason')
})

// Regression: a mail tried again sent its link even once it was spent or revoked (a reset link
// after a password change, or after the reset itself when the first attempt's outcome was lost).
t.test('a mail whose link was spent or revoked before it went out is not sent', async t => {
  const account = await registerAccount(app)
  await app.mailer.flush()
  await mail.nextMail(account.email, { subject: VERIFY })
  await mail.down()
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })).statusCode, 202)
  await app.mailer.flush()
  const reset = await prisma.outboxMail.findFirst({ where: { recipient: account.email, kind: 'password_reset' } })
  t.match(reset, { attempts: 1, tokenId: /./ }, 'its link issued, the send failed')
  // The owner changes the password meanwhile: outstanding reset links die.
  const { accessToken } = await loginWithBody(app, account)
  const changed = await app.inject({ method: 'POST', url: '/auth/password/change', headers: { authorization: `Bearer ${accessToken}` }, payload: { currentPassword: account.password, newPassword: `${account.password} anew` } })
  t.equal(changed.statusCode, 204)
  // The notice's own first attempt, while the server is still down: both wait their retry.
  await app.mailer.flush()
  await mail.up()
  clock.advance(30)
  await app.mailer.flush()
  t.same(mail.untaken(account.email).map(received => received.subject), ['Your password was changed'], 'the notice of the change, and no dead reset link')
  t.equal(await prisma.outboxMail.count({ where: { recipient: account.email } }), 0, 'nothing left in the outbox')
  // Regression: a mail dropped so left no trace, neither a line nor a count.
  t.match(capture.lines.filter(line => line.mailId === reset?.id && String(line.msg).startsWith('mail dropped')),
    [{ level: 30, kind: 'password_reset', domain: 'example.com', reason: 'link_dead', msg: 'mail dropped: its link was spent, revoked or expired before it went out, or derived under a replaced AUTH_SECRET' }], 'said once, with its reason, without the address')
})

t.test('without SMTP_URL the mail goes to the log, through the same outbox (development)', async t => {
  const logs = logCapture()
  const dev = await buildTestApp(t, { logger: pino({ level: 'info' }, logs.stream) })
  const account = await registerAccount(dev.app)
  await dev.app.mailer.flush()
  t.match(logs.lines.find(line => line.msg === 'mail not sent (no SMTP_URL); its text is logged instead'), {
    level: 30, component: 'mail', mail: { to: account.email, subject: 'Confirm your email address', text: /verify-email#token=[A-Za-z0-9_-]{43}/ }
  })
  t.equal(await dev.prisma.outboxMail.count(), 0)
})

t.test('without SMTP_URL, a mail quoting what a user typed is logged printable (regression: a passkey\'s name put C1 controls and line separators in the log)', async t => {
  const logs = logCapture()
  const dev = await buildTestApp(t, { logger: pino({ level: 'info' }, logs.stream) })
  const account = await registerProvenAccount(dev.app, dev.prisma)
  const headers = { authorization: `Bearer ${(await loginWithBody(dev.app, account)).accessToken}` }
  const passkey = await registerPasskey(dev.app, headers, account.password)
  await dev.app.mailer.flush()
  logs.lines.length = 0
  // Such a name is refused now; one an earlier release took is still quoted at the removal.
  await dev.prisma.passkey.update({ where: { id: passkey.id }, data: { name: 'key\u2028two\u009b31m\u0085\u202eend' } })
  t.equal((await dev.app.inject({ method: 'DELETE', url: `/auth/passkeys/${passkey.id}`, headers })).statusCode, 204)
  await dev.app.mailer.flush()
  const line = logs.lines.find(entry => /passkey/i.test((entry.mail as { subject?: string } | undefined)?.subject ?? ''))
  t.ok(line, 'the passkey mail is logged')
  const text = (line?.mail as { text: string }).text
  t.match(text, 'key\\u2028two\\u009b31m\\u0085\\u202eend', 'the name, each control escaped')
  t.match(text, /\n/, 'the text keeps its lines')
  t.notMatch(JSON.stringify(logs.lines), /[\u0080-\u009f\u2028\u2029\u202a-\u202e]/, 'no line holds one')
})

// PostgreSQL only: an embedded database is one process's (see src/db/open.ts).
t.test('two instances on one database: each mail sent exactly once', { skip: process.env.TEST_DATABASE_URL === undefined || process.env.TEST_DATABASE_URL === '' ? 'several instances need a PostgreSQL server' : false }, async t => {
  const shared = await createTestDatabase()
  t.teardown(shared.drop)
  const box = await startMailServer(t)
  const [a, b] = [await buildTestApp(t, { database: shared, env: { SMTP_URL: box.url } }), await buildTestApp(t, { database: shared, env: { SMTP_URL: box.url } })]
  await box.down()
  const accounts = await Promise.all(Array.from({ length: 12 }, (_, i) => registerAccount(i % 2 === 0 ? a.app : b.app)))
  await Promise.all([a.app.mailer.flush(), b.app.mailer.flush()])
  t.equal(await a.prisma.outboxMail.count(), 12, 'every mail waits')
  await box.up()
  // Both instances find them due at once and race for them.
  a.clock.advance(30)
  b.clock.advance(30)
  await Promise.all([a.app.mailer.flush(), b.app.mailer.flush(), a.app.mailer.flush(), b.app.mailer.flush()])
  t.equal(box.received.length, 12, 'twelve mails arrived')
  t.same(accounts.map(account => box.received.filter(m => m.to.includes(account.email)).length), Array(12).fill(1), 'each exactly once')
  t.equal(new Set(box.received.map(m => m.messageId)).size, 12)
  t.equal(await a.prisma.outboxMail.count(), 0)
})

// Regression: a reset's attempt stalled past its lease (its account's row held elsewhere) let a
// second instance claim the mail, and each issued its own link and wrote its own entry. And once
// the first had sent it and taken it off the outbox, the second counted and logged it as dropped:
// its link dead, or no active account for the address, neither of which was true.
t.test('a reset mail claimed again while its first attempt is stalled: one link, one entry, whichever instance sends it', { skip: process.env.TEST_DATABASE_URL === undefined || process.env.TEST_DATABASE_URL === '' ? 'several instances need a PostgreSQL server' : false }, async t => {
  const shared = await createTestDatabase()
  t.teardown(shared.drop)
  const box = await startMailServer(t)
  const logs = [logCapture(), logCapture()] as const
  // No poll: an instance claims a mail only when the test flushes it. Statements wait for their
  // locks far longer than a loaded machine takes between the test's steps.
  const env = { SMTP_URL: box.url, METRICS_TOKEN, MAIL_POLL_SECONDS: '300', DATABASE_QUERY_TIMEOUT_SECONDS: '120' }
  const [a, b] = [
    await buildTestApp(t, { database: shared, env, logger: pino({ level: 'debug' }, logs[0].stream) }),
    await buildTestApp(t, { database: shared, env, logger: pino({ level: 'debug' }, logs[1].stream) })
  ]
  const resetsTo = (email: string) => box.received.filter(received => received.to.includes(email) && /Reset your password/.test(received.subject ?? ''))
  const holder = new pg.Client({ connectionString: shared.url })
  await holder.connect()
  t.teardown(() => holder.end())
  /** A forgot for `account`, its row held so that the first attempt, on `a`, stalls; `b` claims the mail once the lease is over. */
  async function stalledReset (account: { email: string, user: { id: string } }) {
    await holder.query('BEGIN')
    await holder.query('SELECT 1 FROM "User" WHERE id = $1 FOR UPDATE', [account.user.id])
    t.equal((await a.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })).statusCode, 202)
    const first = a.app.mailer.flush()
    const attemptsOf = async () => (await a.prisma.outboxMail.findFirst({ where: { recipient: account.email, kind: 'password_reset' } }))?.attempts
    await until('the first attempt\'s claim', async () => await attemptsOf() === 1)
    return {
      first,
      /** The lease over, the other instance claims it as the first attempt waits for the row; its attempt, once it has claimed it. */
      async claimAgain () {
        b.clock.advance(LEASE_SECONDS + 1)
        const second = b.app.mailer.flush()
        await until('the second claim', async () => await attemptsOf() === 2)
        return { second }
      }
    }
  }
  const lockWaits = async () => (await a.prisma.$queryRaw<Array<{ n: number }>>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)[0]?.n

  // Both attempts wait for the row; the second reads the mail again while the first sends it.
  const account = await registerProvenAccount(a.app, a.prisma)
  await a.app.mailer.flush()
  const stalled = await stalledReset(account)
  const { second } = await stalled.claimAgain()
  await holder.query('ROLLBACK')
  await Promise.all([stalled.first, second])
  t.equal(await a.prisma.oneTimeToken.count({ where: { userId: account.user.id, purpose: 'password_reset' } }), 1, 'one link issued')
  t.equal(await a.prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'password.reset_requested' } }), 1, 'one entry written')
  const links = new Set(resetsTo(account.email).map(received => /token=([\w-]+)/.exec(received.text ?? '')?.[1]))
  t.equal(links.size, 1, 'whatever was sent carries that one link')
  t.equal(await a.prisma.outboxMail.count({ where: { recipient: account.email } }), 0)

  // Again, the second attempt held before it looks the address up until the first has sent the
  // mail and taken it off the outbox: it finds the mail gone. The first waits for the account's
  // row, the table lock queued behind it holds the second's look-up; the first, already holding
  // a lock on the table, goes ahead of it (PostgreSQL's lock queue).
  const other = await registerProvenAccount(a.app, a.prisma)
  await a.app.mailer.flush()
  const [sentBefore, droppedBefore] = [await deliveries('sent', a.app) + await deliveries('sent', b.app), await deliveries('dropped', a.app) + await deliveries('dropped', b.app)]
  const held = await stalledReset(other)
  await until('the first attempt waiting for the row', async () => await lockWaits() === 1)
  const table = new pg.Client({ connectionString: shared.url })
  await table.connect()
  t.teardown(() => table.end())
  await table.query('BEGIN')
  const tableLocked = table.query('LOCK TABLE "User" IN ACCESS EXCLUSIVE MODE')
  tableLocked.catch(() => {})
  await until('the table lock queued', async () => await lockWaits() === 2)
  const { second: heldSecond } = await held.claimAgain()
  await until('the second attempt\'s look-up queued behind it', async () => await lockWaits() === 3)
  await holder.query('ROLLBACK')
  await held.first
  await tableLocked
  t.equal(resetsTo(other.email).length, 1, 'the first attempt sent it')
  await table.query('ROLLBACK')
  await heldSecond
  t.equal(resetsTo(other.email).length, 1, 'and the second sent nothing')
  t.equal(await a.prisma.oneTimeToken.count({ where: { userId: other.user.id, purpose: 'password_reset' } }), 1, 'one link issued')
  t.equal(await deliveries('sent', a.app) + await deliveries('sent', b.app), sentBefore + 1, 'counted sent once')
  t.equal(await deliveries('dropped', a.app) + await deliveries('dropped', b.app), droppedBefore, 'and never dropped')
  const mailId = resetsTo(other.email)[0]?.messageId?.replace(/^<|@.*$/g, '')
  t.same(logs.flatMap(log => log.lines).filter(line => String(line.msg).startsWith('mail dropped') && line.mailId === mailId), [], 'nor said to be')
  t.match(logs[1].lines.filter(line => line.mailId === mailId), [{ level: 20, reason: 'taken_over', msg: /^mail taken over by another attempt/ }], 'the second says, at debug, that another attempt took it over')
})

// Regression: a sent mail whose removal from the outbox failed (a dropped connection, a stalled
// statement) stayed claimed, and was sent again once its claim expired.
t.test('a sent mail whose removal from the outbox fails once is removed on a second try, and not sent again', { skip: process.env.TEST_DATABASE_URL === undefined || process.env.TEST_DATABASE_URL === '' ? 'holding a row on another connection needs a PostgreSQL server' : false }, async t => {
  const shared = await createTestDatabase()
  t.teardown(shared.drop)
  // The outbox row is held elsewhere from the moment the mail server has the mail until a
  // moment after the service's first attempt to remove it has run out of time.
  const box = await startMailServer(t, {
    beforeAccepting: async received => {
      const holder = new pg.Client({ connectionString: shared.url })
      holder.on('error', () => {})
      await holder.connect()
      await holder.query('BEGIN')
      await holder.query('SELECT 1 FROM "OutboxMail" WHERE recipient = $1 FOR UPDATE', [received.to[0]])
      setTimeout(() => { holder.query('ROLLBACK').finally(() => holder.end()).catch(() => {}) }, 1500)
    }
  })
  const { app: instance, prisma: db, clock: instanceClock } = await buildTestApp(t, { database: shared, env: { SMTP_URL: box.url, DATABASE_QUERY_TIMEOUT_SECONDS: '1' } })
  const account = await registerAccount(instance)
  await instance.mailer.flush()
  t.equal(box.received.filter(m => m.to.includes(account.email)).length, 1, 'sent')
  t.equal(await db.outboxMail.count({ where: { recipient: account.email } }), 0, 'and taken off the outbox')
  instanceClock.advance(LEASE_SECONDS + 1)
  await instance.mailer.flush()
  t.equal(box.received.filter(m => m.to.includes(account.email)).length, 1, 'not sent again once its claim would have expired')
})

t.test('templates: links and values are escaped in HTML, durations read well, new addresses are masked', async t => {
  t.equal(linkFor('https://app.example.com/r?token={token}&x=1', 'ab-_9'), 'https://app.example.com/r?token=ab-_9&x=1')
  t.equal(escapeHtml('<a href="x">\'&\'</a>'), '&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;')
  const reset = passwordResetMail({ link: 'https://app.example.com/r?token=t&x="><script>', ttlSeconds: 1800 })
  t.notMatch(reset.html, /<script>/)
  t.match(reset.html, /href="https:\/\/app\.example\.com\/r\?token=t&#38;x=&#34;&#62;&#60;script&#62;"/)
  t.match(reset.text, /for 30 minutes/)
  t.match(verifyEmailMail({ link: 'https://x', ttlSeconds: 3600 }).text, /for 1 hour\./)
  t.match(verifyEmailMail({ link: 'https://x', ttlSeconds: 90 }).text, /for 90 seconds/)
  t.equal(mask('ada@example.com'), 'a•••@example.com')
  t.equal(mask('@example.com'), '•••@example.com')
})

// Regression, in the release before: a kind a newer release queued (a rolling upgrade) rendered as
// nothing, and went out as a mail with no recipient, refused by the mailer with a puzzling EENVELOPE.
t.test('a mail of a kind this release does not know is a failure that names it, tried again later', async t => {
  const render = createMailRenderer({ prisma, outbox: {} as never, oneTimeTokens: {} as never, audit: {} as never, links: { passwordReset: 'https://x/{token}', emailVerification: 'https://x/{token}' }, ttlSeconds: { passwordReset: 60, emailVerification: 60 } })
  const future = { id: randomUUID(), kind: 'a_kind_of_a_later_release', recipient: 'ada@example.com', data: null, tokenId: null, attempts: 1, tokenHash: null }
  await t.rejects(render(future as never), /no template for the mail kind a_kind_of_a_later_release: a newer release queued it/)
})

t.test('credentials in an smtp:// URL need STARTTLS: never sent in the clear unless the URL says requireTLS=false', async t => {
  const logins: string[] = []
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    logger: false,
    onAuth (auth, _session, callback) { logins.push(`${auth.username}:${auth.password ?? ''}`); callback(null, { user: auth.username }) },
    onData (stream, _session, callback) { stream.resume().on('end', () => { callback() }) }
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => { resolve() })))
  const { port } = server.server.address() as AddressInfo
  const send = async (query: string) => {
    const sender = createMailSender({ smtpUrl: `smtp://mailer:SmtpPassw0rd@127.0.0.1:${port}${query}`, from: 'auth@example.com', log: pino({ level: 'silent' }) })
    try {
      await sender.send(randomUUID(), { to: 'ada@example.com', subject: 'Reset your password', text: 'a link', html: '<p>a link</p>' })
    } finally {
      sender.close()
    }
  }
  await t.rejects(send(''), 'a server without STARTTLS gets nothing')
  t.same(logins, [], 'not even the login')
  await send('?requireTLS=false')
  t.same(logins, ['mailer:SmtpPassw0rd'], 'the operator may opt out, in the URL')
})

t.test('an attempt ends at its deadline however lively the server, well before its claim would let another instance send the mail', { timeout: 10_000 }, async t => {
  // A relay that never finishes its answer to MAIL FROM yet is never silent (a line every
  // 20 ms), so no socket timeout ends the exchange.
  const sockets = new Set<Socket>()
  let gone = () => {}
  const closedByClient = new Promise<void>(resolve => { gone = resolve })
  const relay = createServer(socket => {
    sockets.add(socket)
    let drip: NodeJS.Timeout | undefined
    socket.write('220 relay ready\r\n')
    socket.on('data', chunk => {
      if (/^EHLO/i.test(chunk.toString())) socket.write('250 relay\r\n')
      else drip ??= setInterval(() => socket.write('250-still working\r\n'), 20)
    })
    socket.on('error', () => {})
    socket.on('close', () => { clearInterval(drip); sockets.delete(socket); gone() })
  })
  await new Promise<void>(resolve => relay.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { for (const socket of sockets) socket.destroy(); relay.close(() => { resolve() }) }))
  const { port } = relay.address() as AddressInfo
  const sender = createMailSender({ smtpUrl: `smtp://127.0.0.1:${port}`, from: 'auth@example.com', log: pino({ level: 'silent' }), attemptMs: 300 })
  t.teardown(() => { sender.close() })
  await t.rejects(sender.send(randomUUID(), { to: 'ada@example.com', subject: 'Reset your password', text: 'a link', html: '<p>a link</p>' }), { code: 'ETIMEDOUT' })
  await closedByClient
  t.pass('and its connection is closed, so the mail cannot arrive later')
})
