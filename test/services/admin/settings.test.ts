// The runtime settings an instance keeps in memory: a change made here is not undone by a periodic read that began before it.
import t from 'tap'
import { createPool, createPrisma, type PrismaClient } from '../../../src/db/prisma.js'
import { createAuditService } from '../../../src/services/admin/audit.js'
import { createSettingsService } from '../../../src/services/admin/settings.js'
import { testConfig } from '../../helpers/app.js'
import { createTestDatabase } from '../../helpers/database.js'

const database = await createTestDatabase()
const pool = createPool(database)
const prisma = createPrisma(pool)
t.teardown(async () => { await prisma.$disconnect(); await pool.end(); await database.drop() })

/** The database as it is, but the periodic read's answer arrives only when `release` is called, as over a slow network. */
function withHeldReads (client: PrismaClient) {
  let release = (): void => {}
  let held: Promise<void> = Promise.resolve()
  let readsBegun = 0
  const setting = {
    findUnique: async (args: Parameters<PrismaClient['setting']['findUnique']>[0]) => {
      readsBegun++
      const row = await client.setting.findUnique(args)
      await held
      return row
    }
  }
  const proxy = new Proxy(client, {
    get (target, property) {
      if (property === 'setting') return setting
      const value = Reflect.get(target, property)
      return typeof value === 'function' ? value.bind(target) : value
    }
  }) as PrismaClient
  return {
    prisma: proxy,
    hold: () => { held = new Promise(resolve => { release = resolve }) },
    release: () => { release() },
    readsBegun: () => readsBegun
  }
}

t.test('an update applies here at once, even when a periodic read that began before it answers after it', async t => {
  const errors: unknown[] = []
  const database = withHeldReads(prisma)
  const config = testConfig({ SETTINGS_REFRESH_SECONDS: '1' })
  const audit = createAuditService({ prisma, now: () => new Date(), onError: error => { errors.push(error) } })
  const settings = createSettingsService({ prisma: database.prisma, config, audit, onError: error => { errors.push(error) } })
  await settings.start()
  t.teardown(settings.stop)
  t.equal(settings.tokenLifetimes().accessTokenTtlSeconds, 900)

  database.hold()
  const readsBefore = database.readsBegun()
  while (database.readsBegun() === readsBefore) await new Promise(resolve => setTimeout(resolve, 50))
  const actor = { userId: '00000000-0000-0000-0000-000000000000', ip: '127.0.0.1', sessionId: 'none', confirm: async () => {} }
  await settings.update(actor, { accessTokenTtlSeconds: 120 })
  t.equal(settings.tokenLifetimes().accessTokenTtlSeconds, 120, 'applied at once')

  // The read that began before the update now answers, with the row as it was.
  database.release()
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(settings.tokenLifetimes().accessTokenTtlSeconds, 120, 'not undone by the older read')

  // The next periodic read sees the stored change.
  await new Promise(resolve => setTimeout(resolve, 1_200))
  t.equal(settings.tokenLifetimes().accessTokenTtlSeconds, 120)
  t.same(errors, [])
})
