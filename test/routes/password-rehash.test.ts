// Transparent re-hash: a login over a hash made with weaker argon2 parameters stores one with the configured parameters.
import { hash } from '@node-rs/argon2'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { whileHeld } from '../helpers/locks.js'
import { loginWithBody, registerAccount } from '../helpers/users.js'

t.test('a weak stored hash is replaced at the next successful login, and only then', async t => {
  const { app, prisma } = await buildTestApp(t, { env: { ARGON2_MEMORY_KIB: '2048', ARGON2_TIME_COST: '2', ARGON2_PARALLELISM: '1' } })
  const account = await registerAccount(app)
  const stored = () => prisma.user.findUniqueOrThrow({ where: { id: account.user.id }, select: { passwordHash: true } }).then(row => row.passwordHash)
  t.match(await stored(), /^\$argon2id\$v=19\$m=2048,t=2,p=1\$/, 'registration uses the configured parameters')

  // As if hashed years ago, under weaker settings (and once with argon2i).
  for (const weak of [{ algorithm: 2, memoryCost: 1024, timeCost: 1, parallelism: 1 }, { algorithm: 1, memoryCost: 2048, timeCost: 2, parallelism: 1 }]) {
    const weakHash = await hash(account.password, weak)
    await prisma.user.update({ where: { id: account.user.id }, data: { passwordHash: weakHash } })
    const failed = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: 'not the password' } })
    t.equal(failed.statusCode, 401)
    t.equal(await stored(), weakHash, 'a failed login changes nothing')
    await loginWithBody(app, account)
    t.match(await stored(), /^\$argon2id\$v=19\$m=2048,t=2,p=1\$/, 'the login stored a hash with the configured m, t and p')
    await loginWithBody(app, account)
  }
  const strong = await hash(account.password, { algorithm: 2, memoryCost: 4096, timeCost: 3, parallelism: 1 })
  await prisma.user.update({ where: { id: account.user.id }, data: { passwordHash: strong } })
  await loginWithBody(app, account)
  t.equal(await stored(), strong, 'a stronger hash is never weakened')
})

// The login checks the weak hash, makes a stronger one, and replaces the weak one only if it is
// still there. When it is not, the password is checked against what is there now: another
// login's stronger hash of the same password lets this login through (two logins at once after
// the parameters grew both succeed); a new password's hash does not.
t.test('a hash that moved while a login strengthened it: the same password goes through, a changed one does not', {
  skip: (process.env.TEST_DATABASE_URL ?? '') === '' && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
}, async t => {
  const { app, prisma, pool, database } = await buildTestApp(t, { env: { ARGON2_MEMORY_KIB: '2048', ARGON2_TIME_COST: '2', ARGON2_PARALLELISM: '1' } })
  const weak = { algorithm: 2, memoryCost: 1024, timeCost: 1, parallelism: 1 }
  const strong = { algorithm: 2, memoryCost: 2048, timeCost: 2, parallelism: 1 }
  for (const [case_, movedTo, status] of [['another login strengthened it', 'the password', 200], ['a reset changed it', 'another password', 401]] as const) {
    const account = await registerAccount(app)
    await prisma.user.update({ where: { id: account.user.id }, data: { passwordHash: await hash(account.password, weak) } })
    const moved = await hash(movedTo === 'the password' ? account.password : 'quite another passphrase', strong)
    const response = await whileHeld(database.url, pool, {
      hold: async holder => await holder.query('SELECT 1 FROM "User" WHERE id = $1 FOR UPDATE', [account.user.id]),
      waitingStatement: 'UPDATE%"User"%passwordHash%',
      meanwhile: async holder => await holder.query('UPDATE "User" SET "passwordHash" = $2 WHERE id = $1', [account.user.id, moved])
    }, async () => await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } }))
    t.equal(response.statusCode, status, case_)
    t.equal((await prisma.user.findUniqueOrThrow({ where: { id: account.user.id } })).passwordHash, moved, `${case_}: never reverted`)
  }
})
