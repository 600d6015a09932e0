// Bootstrapping the first admin: create, promote, or leave alone once an admin exists; never bring back a deactivated account unasked; audited.
import t from 'tap'
import { createPool, createPrisma } from '../../../src/db/prisma.js'
import { createAdminAccounts } from '../../../src/services/admin/first-admin.js'
import { createPasswordService } from '../../../src/services/passwords/passwords.js'
import { createTestDatabase } from '../../helpers/database.js'

const database = await createTestDatabase()
const pool = createPool(database)
const prisma = createPrisma(pool)
t.teardown(async () => { await prisma.$disconnect(); await pool.end(); await database.drop() })
const passwords = createPasswordService({ memoryKiB: 1024, timeCost: 1, parallelism: 1, concurrency: 2, maxWaiting: 256, minLength: 8, maxLength: 256 })
t.teardown(passwords.close)
const accounts = createAdminAccounts({ prisma, sql: pool, passwords })

/** The audit entries about the user of `email`, oldest first. */
const entriesOf = async (email: string) => {
  const { id } = await prisma.user.findUniqueOrThrow({ where: { email }, select: { id: true } })
  // Entries of one transaction share their time: role changes first.
  return await prisma.auditEvent.findMany({ where: { subjectId: id }, orderBy: [{ createdAt: 'asc' }, { action: 'desc' }], select: { action: true, actorId: true, details: true } })
}

t.test('promotes an existing account when no admin exists, then does nothing', async t => {
  await prisma.user.create({ data: { email: 'first@example.com', passwordHash: 'x', emailVerifiedAt: new Date() } })
  t.equal(await accounts.bootstrap('First@Example.com', undefined), 'promoted')
  t.match(await prisma.user.findUniqueOrThrow({ where: { email: 'first@example.com' } }), { role: 'admin', isActive: true })
  t.same(await entriesOf('first@example.com'), [{ action: 'user.role_changed', actorId: null, details: { from: 'user', to: 'admin', via: 'bootstrap' } }], 'audited, with no actor')
  t.equal(await accounts.bootstrap('other@example.com', 'a long passphrase here'), 'admin-exists')
  t.equal(await prisma.user.count({ where: { email: 'other@example.com' } }), 0)
})

t.test('a deactivated account is neither reactivated nor promoted at start (regression: it came back as admin, with its old password)', async t => {
  await prisma.user.updateMany({ data: { role: 'user' } })
  await prisma.user.create({ data: { email: 'compromised@example.com', passwordHash: await passwords.hash('the intruder knows this one'), isActive: false, emailVerifiedAt: new Date() } })
  t.equal(await accounts.bootstrap('compromised@example.com', undefined), 'inactive')
  t.equal(await accounts.bootstrap('compromised@example.com', 'the intruder knows this one'), 'inactive', 'whatever ADMIN_PASSWORD says')
  t.match(await prisma.user.findUniqueOrThrow({ where: { email: 'compromised@example.com' } }), { role: 'user', isActive: false })
  t.same(await entriesOf('compromised@example.com'), [])
})

t.test('promote: a deactivated account only with reactivate, each change audited with no actor', async t => {
  await t.rejects(accounts.promote('compromised@example.com'), { code: 'USER_INACTIVE' })
  t.match(await prisma.user.findUniqueOrThrow({ where: { email: 'compromised@example.com' } }), { role: 'user', isActive: false }, 'nothing changed')
  t.same(await entriesOf('compromised@example.com'), [])
  t.match(await accounts.promote('compromised@example.com', { reactivate: true }), { user: { email: 'compromised@example.com', role: 'admin' }, promoted: true, reactivated: true })
  t.match(await prisma.user.findUniqueOrThrow({ where: { email: 'compromised@example.com' } }), { role: 'admin', isActive: true })
  t.same(await entriesOf('compromised@example.com'), [
    { action: 'user.role_changed', actorId: null, details: { from: 'user', to: 'admin', via: 'cli' } },
    { action: 'user.activated', actorId: null, details: { via: 'cli' } }
  ])
  t.match(await accounts.promote('compromised@example.com', { reactivate: true }), { promoted: false, reactivated: false }, 'an active admin already: nothing to do')
  t.equal((await entriesOf('compromised@example.com')).length, 2, 'and nothing recorded')
  await prisma.user.update({ where: { email: 'compromised@example.com' }, data: { isActive: false } })
  t.match(await accounts.promote('compromised@example.com', { reactivate: true }), { promoted: false, reactivated: true }, 'a deactivated admin')
  t.same((await entriesOf('compromised@example.com')).filter(entry => entry.action === 'user.activated').length, 2, 'its reactivation audited')
  await t.rejects(accounts.promote('nobody@example.com'), { code: 'NOT_FOUND' })
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
  t.same(await entriesOf('boss@example.com'), [{ action: 'user.role_changed', actorId: null, details: { from: 'user', to: 'admin', via: 'bootstrap', unverified: true } }], 'vouched for by the operator, as the trail says')
})

t.test('creates the account when none exists; needs a password for that', async t => {
  await prisma.user.updateMany({ data: { role: 'user' } })
  await t.rejects(accounts.bootstrap('new@example.com', undefined), /ADMIN_PASSWORD is required/)
  t.equal(await accounts.bootstrap('new@example.com', 'a long passphrase here'), 'created')
  t.equal((await prisma.user.findUniqueOrThrow({ where: { email: 'new@example.com' } })).role, 'admin')
  t.same(await entriesOf('new@example.com'), [{ action: 'user.role_changed', actorId: null, details: { from: null, to: 'admin', via: 'bootstrap', created: true } }])
  const created = await accounts.createAdmin({ email: 'made@example.com', password: 'a long passphrase here' })
  t.same(await entriesOf(created.email), [{ action: 'user.role_changed', actorId: null, details: { from: null, to: 'admin', via: 'cli', created: true } }], 'from the command line')
})
