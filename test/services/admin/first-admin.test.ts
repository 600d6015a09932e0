// Bootstrapping the first admin: create, promote, or leave alone once an admin exists.
import t from 'tap'
import { createPool, createPrisma } from '../../../src/db/prisma.js'
import { createAdminAccounts } from '../../../src/services/admin/first-admin.js'
import { createPasswordService } from '../../../src/services/passwords/passwords.js'
import { createTestDatabase } from '../../helpers/database.js'

const database = await createTestDatabase()
const pool = createPool(database)
const prisma = createPrisma(pool)
t.teardown(async () => { await prisma.$disconnect(); await pool.end(); await database.drop() })
const passwords = createPasswordService({ memoryKiB: 1024, timeCost: 1, parallelism: 1, concurrency: 2, maxWaiting: 256, minLength: 8 })
t.teardown(passwords.close)
const accounts = createAdminAccounts({ prisma, sql: pool, passwords })

t.test('promotes an existing account when no admin exists, then does nothing', async t => {
  await prisma.user.create({ data: { email: 'first@example.com', passwordHash: 'x', isActive: false, emailVerifiedAt: new Date() } })
  t.equal(await accounts.bootstrap('First@Example.com', undefined), 'promoted')
  t.match(await prisma.user.findUniqueOrThrow({ where: { email: 'first@example.com' } }), { role: 'admin', isActive: true })
  t.equal(await accounts.bootstrap('other@example.com', 'a long passphrase here'), 'admin-exists')
  t.equal(await prisma.user.count({ where: { email: 'other@example.com' } }), 0)
})

t.test('an account nobody vouched for is not promoted: its address unverified and ADMIN_PASSWORD not its password', async t => {
  await prisma.user.updateMany({ data: { role: 'user' } })
  // Registered by whoever got there first, with a password of their own.
  await prisma.user.create({ data: { email: 'boss@example.com', passwordHash: await passwords.hash('the squatter chose this one') } })
  t.equal(await accounts.bootstrap('boss@example.com', 'the operator set this one'), 'unproven')
  t.equal(await accounts.bootstrap('boss@example.com', undefined), 'unproven')
  t.equal((await prisma.user.findUniqueOrThrow({ where: { email: 'boss@example.com' } })).role, 'user')
  t.equal(await accounts.bootstrap('boss@example.com', 'the squatter chose this one'), 'promoted', 'whoever knows its password is its owner')
  t.equal((await prisma.user.findUniqueOrThrow({ where: { email: 'boss@example.com' } })).role, 'admin')
})

t.test('creates the account when none exists; needs a password for that', async t => {
  await prisma.user.updateMany({ data: { role: 'user' } })
  await t.rejects(accounts.bootstrap('new@example.com', undefined), /ADMIN_PASSWORD is required/)
  t.equal(await accounts.bootstrap('new@example.com', 'a long passphrase here'), 'created')
  t.equal((await prisma.user.findUniqueOrThrow({ where: { email: 'new@example.com' } })).role, 'admin')
})
