// Transparent re-hash: a login over a hash made with weaker argon2 parameters stores one with the configured parameters.
import { hash } from '@node-rs/argon2'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
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
