// Link mails still in the outbox when AUTH_SECRET is replaced, as an operator does it: the service stopped while the mail server was down,
// started again with the new secret. Their links ended with the old secret, so they are not sent; a reset asked for and not yet served still is.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { buildTestApp, type TestApp } from '../../helpers/app.js'
import { createTestDatabase } from '../../helpers/database.js'
import { startMailServer } from '../../helpers/mail.js'
import { registerAccount, registerProvenAccount } from '../../helpers/users.js'

const NEW_SECRET = 'the-new-root-secret-ZYXWVUTSRQPONMLKJIHGFEDCBA-9876543210'

const database = await createTestDatabase()
t.teardown(database.drop)
const mail = await startMailServer(t)

/** The service on the file's database, with `env`, for as long as `use` runs: one at a time, as the embedded database allows. */
async function running<T> (env: Record<string, string>, use: (service: TestApp) => Promise<T>): Promise<T> {
  const teardowns: Array<() => unknown> = []
  const built = await buildTestApp({ teardown: fn => teardowns.push(fn) }, { database, env: { SMTP_URL: mail.url, ...env } })
  try {
    return await use(built)
  } finally {
    for (const teardown of teardowns.reverse()) await teardown()
  }
}

t.test('a link mail queued under the replaced secret is not sent; a reset not yet served gets a link under the new one', async t => {
  await mail.down()
  const { unverified, resetAsked, resetWaiting } = await running({}, async ({ app, prisma }) => {
    const unverified = await registerAccount(app)
    const resetAsked = await registerProvenAccount(app, prisma)
    const resetWaiting = await registerProvenAccount(app, prisma)
    t.equal((await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: resetAsked.email } })).statusCode, 202)
    await app.mailer.flush()
    const queued = (recipient: string, kind: 'verify_email' | 'password_reset') => prisma.outboxMail.findFirst({ where: { recipient, kind } })
    t.match(await queued(unverified.email, 'verify_email'), { tokenId: /./, attempts: 1 }, 'its link issued under the first secret, its send failed')
    t.match(await queued(resetAsked.email, 'password_reset'), { tokenId: /./, attempts: 1 }, 'likewise: a reset link is issued at the first attempt')
    return { unverified, resetAsked, resetWaiting }
  })
  await mail.up()

  await running({ AUTH_SECRET: NEW_SECRET }, async ({ app, prisma, clock }) => {
    // Asked for while the service was stopped: no attempt yet, so no token either.
    await prisma.outboxMail.create({ data: { id: randomUUID(), kind: 'password_reset', recipient: resetWaiting.email, nextAttemptAt: clock.now() } })
    // Due again (MAIL_RETRY_BASE_SECONDS), the reset link not yet expired.
    clock.advance(60)
    await app.mailer.flush()
    const subjects = (email: string) => mail.untaken(email).map(received => received.subject)
    t.same(subjects(unverified.email), [], 'no verification mail with a dead link')
    t.same(subjects(resetAsked.email), [], 'no reset mail with a dead link (nor its verification mail)')
    t.same(subjects(resetWaiting.email), ['Reset your password'], 'only the reset not yet served')
    t.equal(await prisma.outboxMail.count({ where: { kind: { in: ['verify_email', 'password_reset'] } } }), 0, 'both gone from the outbox, as a mail whose link expired')

    const waiting = await mail.nextMail(resetWaiting.email, { subject: /^Reset your password$/ })
    t.equal((await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: waiting.token, password: 'a brand new passphrase 42' } })).statusCode, 204, 'the reset not yet served: its link, derived under the new secret, works')

    // A new request sends a new link, as the owner is told to ask for one.
    t.equal((await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: resetAsked.email } })).statusCode, 202)
    const fresh = await mail.nextMail(resetAsked.email, { subject: /^Reset your password$/ })
    t.equal((await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: fresh.token, password: 'another new passphrase 42' } })).statusCode, 204, 'asked again: the new link works')
  })
})
