// The censoring of secret keys in log lines (test/attacks/logs.test.ts runs it through real flows).
import { Writable } from 'node:stream'
import { pino } from 'pino'
import t from 'tap'
import { logRedaction, withoutSecrets } from '../src/log-redaction.js'

function capturingLogger () {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() } })
  return { log: pino({ level: 'trace', ...logRedaction }, stream), lines }
}

t.test('a secret key at the top or one level down is censored; the logged object is not changed', async t => {
  const body = { email: 'a@example.com', password: 'hunter2 hunter2', nested: { token: 'two levels down' } }
  const logged = { token: 'top', body, code: 'AUTH_INVALID_CREDENTIALS', list: [{ password: 'in an array' }] }
  const clean = withoutSecrets(logged)
  t.same(clean, { token: '[redacted]', body: { email: 'a@example.com', password: '[redacted]', nested: { token: 'two levels down' } }, code: 'AUTH_INVALID_CREDENTIALS', list: [{ password: 'in an array' }] })
  t.equal(body.password, 'hunter2 hunter2', 'the original body keeps its value')
  t.equal(logged.token, 'top')
  t.same(withoutSecrets(Object.freeze({ body: Object.freeze({ token: 'frozen' }) })), { body: { token: '[redacted]' } }, 'frozen objects too, without throwing')
  const withGetter = Object.defineProperty({}, 'secret', { get: () => 'computed', enumerable: true })
  t.same(withoutSecrets({ totp: withGetter }), { totp: { secret: '[redacted]' } }, 'and a getter')
  const plain = { req: { method: 'GET' }, responseTime: 1, data: Buffer.alloc(1 << 20) }
  t.equal(withoutSecrets(plain), plain, 'nothing to censor: the same object, not a copy')
})

t.test('through pino: bodies, errors and credential headers', async t => {
  const { log, lines } = capturingLogger()
  const error = Object.assign(new Error('upstream refused'), { accessToken: 'eyJ.secret.token' })
  log.child({ reqId: 'r-1' }).warn({ err: error, session: { refreshToken: 'rt.secret' }, body: { newPassword: 'new secret pass', deviceToken: 'device.secret' } }, 'failed')
  log.info({ req: { headers: { authorization: 'Bearer abc', cookie: 'a=b', accept: '*/*' } }, res: { headers: { 'set-cookie': 'x=y' } } }, 'headers')
  const text = JSON.stringify(lines)
  for (const secret of ['eyJ.secret.token', 'rt.secret', 'new secret pass', 'device.secret', 'Bearer abc', 'a=b', 'x=y']) t.notOk(text.includes(secret), `not logged: ${secret}`)
  t.match(lines[0], { reqId: 'r-1', session: { refreshToken: '[redacted]' }, err: { type: 'Error', message: 'upstream refused', stack: /upstream refused/, accessToken: '[redacted]' }, body: { newPassword: '[redacted]', deviceToken: '[redacted]' } })
  t.equal(error.accessToken, 'eyJ.secret.token', 'the error itself is not changed')
  t.match(lines[1], { req: { headers: { authorization: '[redacted]', cookie: '[redacted]', accept: '*/*' } }, res: { headers: { 'set-cookie': '[redacted]' } } })
})

// Regression: a database error's `detail` quoted the row, an address and a password hash with it.
t.test('a database error never writes the values it quotes, from pg or through Prisma\'s adapter', async t => {
  const { log, lines } = capturingLogger()
  const pgError = Object.assign(new Error('null value in column "role" of relation "User" violates not-null constraint'), {
    code: '23502', table: 'User', column: 'role', detail: 'Failing row contains (ada@example.com, $argon2id$v=19$hash, null).', where: 'SQL statement "INSERT … ada@example.com"'
  })
  log.error({ err: pgError }, 'request failed')
  // A check violation, as Prisma's adapter passes it on: the driver's words kept whole.
  const prismaError = Object.assign(new Error('Check constraint violation'), {
    code: 'P2010', meta: { driverAdapterError: { cause: { kind: 'postgres', code: '23514', originalMessage: 'new row for relation "User" violates check constraint: ada@example.com', detail: 'Failing row contains (ada@example.com, $argon2id$v=19$hash, null).' } } }
  })
  log.error({ err: prismaError }, 'request failed')
  t.notMatch(JSON.stringify(lines), /ada@example\.com|argon2id/, 'neither the address nor the hash')
  t.match(lines[0], { err: { code: '23502', table: 'User', column: 'role', message: /violates not-null constraint/ } }, 'what went wrong, and where, is kept')
  t.match(lines[1], { err: { code: 'P2010', meta: { driverAdapterError: { cause: { code: '23514' } } } } })
})

t.test('a URL error never writes its input: the URL, and the password in it', async t => {
  const { log, lines } = capturingLogger()
  // What new URL() throws for an SMTP or Redis URL with an unencoded / in the password.
  const parse = (url: string) => { try { return new URL(url) } catch (error) { return error as Error & { input?: string } } }
  const error = parse('smtp://mailer:pa/ss-hunter2@mail.example.com:587') as Error & { input?: string }
  t.equal(error.input, 'smtp://mailer:pa/ss-hunter2@mail.example.com:587', 'Node puts the whole URL on the error')
  log.fatal({ err: error }, 'start-up failed')
  log.error({ err: Object.assign(new Error('outer'), { inner: parse('redis://:nes/ted-hunter2@cache:6379'), errors: [parse('redis://:lis#ted-hunter2@cache')] }) }, 'nested')
  // A cause that is no error is written with its properties (an error cause: its message only).
  const cause = { input: 'redis://:cau/se-hunter2@cache:6379', code: 'ERR_INVALID_URL' }
  log.error({ err: Object.assign(new Error('could not connect'), { cause }) }, 'wrapped')
  t.equal(lines.length, 3)
  t.notMatch(JSON.stringify(lines), /hunter2/, 'no password, at any depth')
  t.match(lines[0], { level: 60, err: { type: 'TypeError', message: 'Invalid URL', code: 'ERR_INVALID_URL', stack: /Invalid URL/ } }, 'the rest of the error is kept')
  t.match(lines[1], { err: { inner: { code: 'ERR_INVALID_URL' }, aggregateErrors: [{ code: 'ERR_INVALID_URL' }] } })
  t.match(lines[2], { err: { message: 'could not connect', cause: { code: 'ERR_INVALID_URL' } } })
  t.equal(error.input, 'smtp://mailer:pa/ss-hunter2@mail.example.com:587', 'the error itself is not changed')
  t.equal(cause.input, 'redis://:cau/se-hunter2@cache:6379', 'nor its cause')
})
