// Login timing over real HTTP: an unknown account costs the same as a known one with a wrong password (real argon2 cost),
// also when the known one has a second factor: nothing before the password tells it.
import { hash } from '@node-rs/argon2'
import t from 'tap'
import { ARGON2_FLOOR } from '../../src/config-checks.js'
import { buildTestApp } from '../helpers/app.js'
import { listen } from '../helpers/http.js'
import { enrolTotp } from '../helpers/mfa.js'
import { loginWithBody, proveAddress, registerAccount } from '../helpers/users.js'

const { app, clock, prisma } = await buildTestApp(t, {
  env: { ARGON2_MEMORY_KIB: String(ARGON2_FLOOR.memoryKiB), ARGON2_TIME_COST: String(ARGON2_FLOOR.timeCost), ARGON2_PARALLELISM: String(ARGON2_FLOOR.parallelism) }
})
const http = await listen(app)

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number
const timed = async (body: object) => {
  const start = process.hrtime.bigint()
  const response = await http.request('/auth/login', { body })
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, response }
}

t.test('unknown and known identifiers answer alike, in about the same time', async t => {
  const accounts = await Promise.all(Array.from({ length: 3 }, () => registerAccount(app)))
  // One of them guards its login with TOTP.
  const guarded = accounts[0] as { email: string, password: string, user: { id: string } }
  await proveAddress(prisma, guarded.user.id)
  await enrolTotp(app, { authorization: `Bearer ${(await loginWithBody(app, guarded)).accessToken}` }, clock, guarded.password)
  await timed({ email: 'warm-up@example.com', password: 'warm up the decoy' })
  const known: number[] = []
  const unknown: number[] = []
  // Interleaved, so that load from other processes weighs on both alike; compared by median.
  for (let i = 0; i < 11; i++) {
    const account = accounts[i % accounts.length] as { email: string }
    // Alternating which goes first, so that neither always follows the other.
    const knownFirst = i % 2 === 0
    const first = await timed(knownFirst ? { email: account.email, password: `wrong password ${i}` } : { email: `nobody-${i}@example.com`, password: `wrong password ${i}` })
    const second = await timed(knownFirst ? { email: `nobody-${i}@example.com`, password: `wrong password ${i}` } : { email: account.email, password: `wrong password ${i}` })
    const [a, b] = knownFirst ? [first, second] : [second, first]
    if (i === 0) t.same([a.response.json(), b.response.json()], [b.response.json(), a.response.json()], 'the same answer')
    t.same([a.response.status, b.response.status], [401, 401])
    known.push(a.ms)
    unknown.push(b.ms)
  }
  const ratio = median(unknown) / median(known)
  t.ok(ratio > 0.25 && ratio < 4, `unknown/known median ratio ${ratio.toFixed(2)} (${median(unknown).toFixed(1)} ms / ${median(known).toFixed(1)} ms)`)
})

// A hash made before the parameters changed costs another time to check than the decoy;
// a deactivated account never logs in again to be rehashed (regression: it showed for good).
t.test('a deactivated account costs the decoy\'s work, whatever its hash was made with', async t => {
  const account = await registerAccount(app)
  // Far more work than configured: as if the parameters were lowered since.
  const slow = await hash(account.password, { memoryCost: ARGON2_FLOOR.memoryKiB, timeCost: ARGON2_FLOOR.timeCost * 40, parallelism: 1 })
  await prisma.user.update({ where: { id: account.user.id }, data: { isActive: false, passwordHash: slow } })
  await timed({ email: 'warm-up@example.com', password: 'warm up the decoy' })
  const deactivated: number[] = []
  const unknown: number[] = []
  for (let i = 0; i < 5; i++) {
    deactivated.push((await timed({ email: account.email, password: `wrong password ${i}` })).ms)
    unknown.push((await timed({ email: `nobody-else-${i}@example.com`, password: `wrong password ${i}` })).ms)
  }
  const ratio = median(deactivated) / median(unknown)
  t.ok(ratio > 0.25 && ratio < 4, `deactivated/unknown median ratio ${ratio.toFixed(2)} (${median(deactivated).toFixed(1)} ms / ${median(unknown).toFixed(1)} ms)`)
  const right = await http.request('/auth/login', { body: { email: account.email, password: account.password } })
  t.equal(right.status, 401, 'its right password is refused alike')
})
