// The development secret under DATA_DIR: made whole, once, even by processes starting together; a file or directory there that cannot serve stops the start with a clear error.
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import t from 'tap'
import { loadConfig } from '../src/config.js'
import { resolveAuthSecret } from '../src/dev-secret.js'

const silent = pino({ level: 'silent' })

async function dataDir (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'auth-dev-secret-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const resolve = (dir: string) => resolveAuthSecret(loadConfig({ DATA_DIR: dir, NODE_ENV: 'development' }), silent)

t.test('a new secret: 64 random characters, written whole to a private file, nothing else left behind; the same one at the next start', async t => {
  const dir = await dataDir(t)
  const secret = await resolve(dir)
  t.match(secret, /^[A-Za-z0-9_-]{64}$/)
  t.equal(await readFile(join(dir, 'auth-secret'), 'utf8'), `${secret}\n`)
  t.equal((await stat(join(dir, 'auth-secret'))).mode & 0o777, 0o600, 'mode 0600')
  t.same(await readdir(dir), ['auth-secret'], 'no temporary file left')
  t.equal(await resolve(dir), secret, 'read back')
})

t.test('AUTH_SECRET set: no file is read or made', async t => {
  const dir = await dataDir(t)
  const secret = 'an-auth-secret-set-in-the-environment-0123456789'
  t.equal(await resolveAuthSecret(loadConfig({ DATA_DIR: dir, NODE_ENV: 'development', AUTH_SECRET: secret }), silent), secret)
  t.same(await readdir(dir), [])
})

// Regression: any content was taken, an empty file (a write cut short by a full disk or a kill) too,
// and every key then derived from a value anyone knows: a token signed under it passed as admin.
t.test('a secret file that cannot serve (empty, short, guessable) stops the start, naming the file and the remedy', async t => {
  const dir = await dataDir(t)
  const file = join(dir, 'auth-secret')
  const cases: Array<[string, string, RegExp]> = [
    ['empty', '', /holds a development secret of 0 characters, fewer than the 32 AUTH_SECRET needs/],
    ['a line break only', '\n', /of 0 characters/],
    ['short', 'abc123\n', /of 6 characters, fewer than the 32/],
    ['one character short', `${'Zq3x9Lm2Vb7Nc4Wd8Ke1Rt6Yh5Gj0Pa'}\n`, /of 31 characters/],
    ['guessable', `${'a'.repeat(40)}\n`, /looks like a placeholder or a low-entropy value/],
    ['too long', 'Zq3x9Lm2Vb7Nc4Wd'.repeat(65), /of 1040 characters, more than the 1024/]
  ]
  for (const [name, content, message] of cases) {
    await writeFile(file, content, { mode: 0o600 })
    const refused = await resolve(dir).then(secret => `accepted: ${JSON.stringify(secret)}`, (error: Error) => error.message)
    t.match(refused, message, name)
    t.match(refused, file, `${name}: names the file`)
    t.match(refused, `delete ${file} for a new one to be made`, `${name}: says what to do`)
    t.equal(await readFile(file, 'utf8'), content, `${name}: the file is left as it was`)
  }
  await writeFile(file, 'Zq3x9Lm2Vb7Nc4Wd8Ke1Rt6Yh5Gj0Pa-\n')
  t.equal(await resolve(dir), 'Zq3x9Lm2Vb7Nc4Wd8Ke1Rt6Yh5Gj0Pa-', '32 characters of a random look: taken')
})

// Regression: reported as EEXIST, as if the secret existed.
t.test('a directory at the path is a clear error', async t => {
  const dir = await dataDir(t)
  await mkdir(join(dir, 'auth-secret'))
  await t.rejects(resolve(dir), { message: `${join(dir, 'auth-secret')} is a directory, where the development secret is kept: remove it for a new secret to be made, or set AUTH_SECRET (openssl rand -base64 48)` })
  t.same(await readdir(dir), ['auth-secret'], 'no temporary file left')
})

// Regression: both found no file, both wrote one with `wx`, and the second crashed on EEXIST.
t.test('first starts racing on one DATA_DIR: each gets the one secret written', async t => {
  const root = await dataDir(t)
  for (let round = 0; round < 10; round++) {
    const dir = join(root, String(round))
    await mkdir(dir)
    const secrets = await Promise.all(Array.from({ length: 4 }, () => resolve(dir).catch((error: Error) => `failed: ${error.message}`)))
    const written = (await readFile(join(dir, 'auth-secret'), 'utf8')).trim()
    t.same(secrets, secrets.map(() => written), `round ${round}: the same secret for all, the one in the file`)
    t.same(await readdir(dir), ['auth-secret'], `round ${round}: no temporary file left`)
  }
})
