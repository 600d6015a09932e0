// Mail promised before a crash leaves after the restart. Starts real processes: only a real SIGKILL shows what survives a crash.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createTestDatabase } from './helpers/database.js'
import { startMailServer } from './helpers/mail.js'
import { freePort } from './helpers/net.js'
import { postJson, startServer, stopServer, waitUntilReady } from './helpers/process.js'
import { newAccount } from './helpers/users.js'

const onServer = process.env.TEST_DATABASE_URL !== undefined && process.env.TEST_DATABASE_URL !== ''

async function databaseEnv (): Promise<Record<string, string>> {
  if (onServer) {
    const database = await createTestDatabase()
    t.teardown(database.drop)
    return { DATABASE_URL: database.url }
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'auth-mail-crash-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  return { DATA_DIR: dataDir }
}

t.test('SMTP down, the service killed with SIGKILL while mails wait: after the restart they arrive, and their links work', async t => {
  const mail = await startMailServer(t)
  await mail.down()
  const env = {
    ...await databaseEnv(),
    SMTP_URL: mail.url,
    // Long enough that no retry is under way when the process is killed: a mail claimed for an
    // attempt at that moment would wait for its claim to expire (LEASE_SECONDS) instead.
    MAIL_RETRY_BASE_SECONDS: '5',
    MAIL_POLL_SECONDS: '1',
    COOKIE_SECURE: 'false',
    ARGON2_MEMORY_KIB: '1024',
    ARGON2_TIME_COST: '1'
  }
  const port = await freePort()
  const first = startServer(env, { port })
  t.teardown(() => { first.child.kill('SIGKILL') })
  await waitUntilReady(first)
  const account = newAccount()
  t.equal((await postJson(first, '/auth/register', account)).status, 201)
  t.equal((await postJson(first, '/auth/password/forgot', { email: account.email })).status, 202)
  const failures = () => first.logs().filter(line => line.msg === 'mail not sent; will retry').length
  const deadline = Date.now() + 20_000
  while (failures() < 2 && Date.now() < deadline) await sleep(50)
  t.ok(failures() >= 2, 'both mails were tried while SMTP was down')
  first.child.kill('SIGKILL')
  await first.exited

  await mail.up()
  const second = startServer(env, { port })
  t.teardown(() => stopServer(second))
  await waitUntilReady(second)
  const verification = await mail.nextMail(account.email, { subject: /^Confirm your email address$/, timeoutMs: 20_000 })
  const reset = await mail.nextMail(account.email, { subject: /^Reset your password$/, timeoutMs: 20_000 })
  t.equal((await postJson(second, '/auth/email/verify', { token: verification.token })).status, 204, 'the verification link works')
  t.equal((await postJson(second, '/auth/password/reset', { token: reset.token, password: 'a brand new passphrase 7' })).status, 204, 'the reset link works')
  await sleep(1500)
  t.same(mail.untaken(account.email).map(m => m.subject), ['Your password was changed'], 'nothing sent twice')
  t.equal((await stopServer(second)).code, 0)
})
