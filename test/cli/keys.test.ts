// `npm run keys:generate`: a key pair with a private file only its owner can read, and clear refusals.
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { programArgs } from '../helpers/program.js'

function run (args: string[], env: Record<string, string> = {}): Promise<{ code: number | null, output: string }> {
  return new Promise(resolve => {
    const child = spawn(process.execPath, [...programArgs('cli/keys'), ...args], { env: { PATH: process.env.PATH, ...env } })
    let output = ''
    child.stdout.on('data', chunk => { output += chunk })
    child.stderr.on('data', chunk => { output += chunk })
    child.on('close', code => resolve({ code, output }))
  })
}

const dir = await mkdtemp(join(tmpdir(), 'auth-keys-cli-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))

t.test('generate into JWT_KEYS_DIR, with the configured algorithm', async t => {
  const result = await run(['generate'], { JWT_KEYS_DIR: dir, JWT_ALGORITHM: 'ES256' })
  t.equal(result.code, 0, result.output)
  t.match(result.output, /kid \d{8}T\d{6}Z-[0-9a-f]{8} \(ES256\)/)
  const files = await readdir(dir)
  const privateFile = files.find(name => name.endsWith('.key.pem')) as string
  t.equal((await stat(join(dir, privateFile))).mode & 0o777, 0o600)
  t.ok(files.some(name => name.endsWith('.pub.pem')))
})

t.test('flags win over the environment; refusals are one clear line', async t => {
  t.equal((await run(['generate', '--dir', join(dir, 'other'), '--algorithm', 'EdDSA'])).code, 0)
  const noDir = await run(['generate'])
  t.equal(noDir.code, 1)
  t.match(noDir.output, /no directory: pass --dir or set JWT_KEYS_DIR/)
  const badAlgorithm = await run(['generate', '--dir', dir, '--algorithm', 'HS256'])
  t.equal(badAlgorithm.code, 1)
  t.match(badAlgorithm.output, /unsupported algorithm "HS256"/)
  t.match((await run(['rotate'])).output, /usage: /)
})

t.test('only JWT_KEYS_DIR and JWT_ALGORITHM are read: nothing else is needed, in production too; a bad JWT_ALGORITHM is named', async t => {
  // No PUBLIC_URL, AUTH_SECRET, DATABASE_URL or SMTP_URL, and ES256 with no JWT_KEYS_DIR yet (the first key).
  const production = await run(['generate', '--dir', join(dir, 'production')], { NODE_ENV: 'production', JWT_ALGORITHM: 'ES256' })
  t.equal(production.code, 0, production.output)
  t.match(production.output, /\(ES256\)/)
  const badAlgorithm = await run(['generate'], { JWT_KEYS_DIR: join(dir, 'bad'), JWT_ALGORITHM: 'RS256' })
  t.equal(badAlgorithm.code, 1)
  t.match(badAlgorithm.output, /^JWT_ALGORITHM: must be one of HS256, EdDSA, ES256, got "RS256"/)
})
