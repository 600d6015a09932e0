// Upgrading a database across the second-factor rules: the passkey rules of 20261205090000 (the
// backfill of the proofs sessions made before them, and the catch-up after a rolling upgrade,
// deploy/upgrades), the recovery codes' generation of 20261206122445 with its catch-up, and the
// authenticator app's enrolment a session proved (20261206144925).
import { cp, mkdir, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { applyMigrations } from '../../src/db/schema-engine.js'
import { createEmptyDatabase, withClient } from '../helpers/database.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const migrationsDir = join(root, 'prisma', 'migrations')
const catchUp = await readFile(join(root, 'deploy', 'upgrades', 'passkey-suspension-catch-up.sql'), 'utf8')
const recoveryCodeCatchUp = await readFile(join(root, 'deploy', 'upgrades', 'recovery-code-catch-up.sql'), 'utf8')

/** A copy of the migrations up to `last`, as a database of an earlier release had them. */
async function migrationsUpTo (dir: string, last: string): Promise<string> {
  const target = join(dir, 'migrations')
  await mkdir(target)
  for (const entry of await readdir(migrationsDir)) {
    if (entry.endsWith('.toml') || entry <= last) await cp(join(migrationsDir, entry), join(target, entry), { recursive: true })
  }
  return target
}

const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000)

t.test('the backfill names the passkey a session proved only where no other can have been the one', async t => {
  const database = await createEmptyDatabase()
  t.teardown(database.drop)
  await applyMigrations(database.url, { connectTimeoutSeconds: 30, migrationsDir: await migrationsUpTo(t.testdir(), '20261205090000_passkey_remedies') })
  await withClient(database.url, async client => {
    const user = async (email: string) => (await client.query<{ id: string }>('INSERT INTO "User" (id, email, "passwordHash", role, "updatedAt") VALUES (gen_random_uuid(), $1, \'x\', \'admin\', now()) RETURNING id', [email])).rows[0]!.id
    const passkey = (userId: string, id: string, createdAt: Date) => client.query('INSERT INTO "Passkey" (id, "userId", "publicKey", "deviceType", aaguid, name, "createdAt") VALUES ($1, $2, \'\\x00\', \'singleDevice\', \'\', $1, $3)', [id, userId, createdAt])
    const session = (id: string, userId: string, provenAt: Date | null) => client.query('INSERT INTO "Session" (id, "userId", "secretSalt", "idleExpiresAt", "absoluteExpiresAt", "passkeyProvenAt") VALUES ($1, $2, \'\\x00\', now() + interval \'1 day\', now() + interval \'1 day\', $3)', [id, userId, provenAt])
    const removed = (userId: string, passkeyId: string, at: Date) => client.query('INSERT INTO "AuditEvent" (id, action, "actorId", "subjectId", details, "createdAt") VALUES (gen_random_uuid(), \'passkey.removed\', $1, $1, $2, $3)', [userId, { passkeyId }, at])

    const one = await user('one@example.com')
    await passkey(one, 'one-a', minutesAgo(60))
    await session('00000000-0000-4000-8000-000000000011', one, minutesAgo(50))
    await session('00000000-0000-4000-8000-000000000012', one, minutesAgo(70))
    await session('00000000-0000-4000-8000-000000000013', one, null)
    const two = await user('two@example.com')
    await passkey(two, 'two-a', minutesAgo(60))
    await passkey(two, 'two-b', minutesAgo(55))
    await session('00000000-0000-4000-8000-000000000021', two, minutesAgo(50))
    // Regression: A and B registered, the session proved B, B removed; A was named as the one proven.
    const gone = await user('gone@example.com')
    await passkey(gone, 'gone-a', minutesAgo(60))
    await session('00000000-0000-4000-8000-000000000031', gone, minutesAgo(50))
    await removed(gone, 'gone-b', minutesAgo(40))
    // A removal before the proof says nothing about it.
    const before = await user('before@example.com')
    await passkey(before, 'before-a', minutesAgo(60))
    await removed(before, 'before-b', minutesAgo(55))
    await session('00000000-0000-4000-8000-000000000041', before, minutesAgo(50))
  })

  await applyMigrations(database.url, { connectTimeoutSeconds: 30 })
  const named = await withClient(database.url, async client => Object.fromEntries((await client.query<{ id: string, passkeyProvenId: string | null }>('SELECT id, "passkeyProvenId" FROM "Session" ORDER BY id')).rows.map(row => [row.id.slice(-2), row.passkeyProvenId])))
  t.same(named, {
    11: 'one-a', // the one passkey, proven after it was registered
    12: null, // proven before it existed: another passkey, gone since
    13: null, // proved none
    21: null, // two passkeys: either
    31: null, // a passkey removed after the proof may have been the one
    41: 'before-a'
  })
})

t.test('the catch-up after a rolling upgrade: what old instances did after the migration', async t => {
  const database = await createEmptyDatabase()
  t.teardown(database.drop)
  await applyMigrations(database.url, { connectTimeoutSeconds: 30 })
  const rows = await withClient(database.url, async client => {
    const user = async (email: string) => (await client.query<{ id: string }>('INSERT INTO "User" (id, email, "passwordHash", "updatedAt") VALUES (gen_random_uuid(), $1, \'x\', now()) RETURNING id', [email])).rows[0]!.id
    const passkey = (userId: string, id: string) => client.query('INSERT INTO "Passkey" (id, "userId", "publicKey", "deviceType", aaguid, name) VALUES ($1, $2, \'\\x00\', \'singleDevice\', \'\', $1)', [id, userId])
    const session = (id: string, userId: string, amr: string[], createdAt: Date) => client.query('INSERT INTO "Session" (id, "userId", "secretSalt", "idleExpiresAt", "absoluteExpiresAt", amr, "createdAt") VALUES ($1, $2, \'\\x00\', now() + interval \'1 day\', now() + interval \'1 day\', $3, $4)', [id, userId, amr, createdAt])
    const audit = (action: string, userId: string, at: Date) => client.query('INSERT INTO "AuditEvent" (id, action, "actorId", "subjectId", "createdAt") VALUES (gen_random_uuid(), $1, $2, $2, $3)', [action, userId, at])
    const migratedAt = (await client.query<{ at: Date }>('SELECT started_at AT TIME ZONE \'UTC\' AS at FROM _prisma_migrations WHERE migration_name = \'20261205090000_passkey_remedies\'')).rows[0]!.at
    const after = (seconds: number) => new Date(migratedAt.getTime() + seconds * 1000)

    // An old instance changed the password after the migration; then one let the passkey sign in alone.
    const changed = await user('changed@example.com')
    await passkey(changed, 'changed-a')
    await session('00000000-0000-4000-8000-000000000011', changed, ['pwd'], after(1))
    await audit('password.changed', changed, after(2))
    await session('00000000-0000-4000-8000-000000000012', changed, ['hwk', 'user', 'mfa'], after(3))
    await session('00000000-0000-4000-8000-000000000013', changed, ['pwd', 'hwk', 'mfa'], after(4))
    const reset = await user('reset@example.com')
    await passkey(reset, 'reset-a')
    await audit('password.reset', reset, after(1))
    await session('00000000-0000-4000-8000-000000000021', reset, ['hwk'], after(2))
    // Changed before the migration: the old rules applied then, and no new one was broken.
    const earlier = await user('earlier@example.com')
    await passkey(earlier, 'earlier-a')
    await audit('password.changed', earlier, after(-3600))
    await session('00000000-0000-4000-8000-000000000031', earlier, ['hwk', 'user', 'mfa'], after(1))

    await client.query(catchUp)
    const first = await client.query('SELECT s.id, s."revokedReason", p.id AS passkey, p.passwordless FROM "Session" s JOIN "Passkey" p USING ("userId") ORDER BY s.id')
    await client.query(catchUp)
    const second = await client.query('SELECT s.id, s."revokedReason", p.id AS passkey, p.passwordless FROM "Session" s JOIN "Passkey" p USING ("userId") ORDER BY s.id')
    t.same(second.rows, first.rows, 'running it again changes nothing')
    return first.rows.map(row => ({ ...row, id: row.id.slice(-2) }))
  })
  t.same(rows, [
    { id: '11', revokedReason: null, passkey: 'changed-a', passwordless: false }, // the session that changed it stays
    { id: '12', revokedReason: 'password_change', passkey: 'changed-a', passwordless: false }, // opened by the passkey alone after it
    { id: '13', revokedReason: null, passkey: 'changed-a', passwordless: false }, // with the new password
    { id: '21', revokedReason: 'password_change', passkey: 'reset-a', passwordless: false },
    { id: '31', revokedReason: null, passkey: 'earlier-a', passwordless: true }
  ])
})

t.test('the recovery codes\' generation: a code proven since the app it came with was confirmed keeps counting, an earlier one does not', async t => {
  const database = await createEmptyDatabase()
  t.teardown(database.drop)
  await applyMigrations(database.url, { connectTimeoutSeconds: 30, migrationsDir: await migrationsUpTo(t.testdir(), '20261206090000_account_deleted_notice') })
  await withClient(database.url, async client => {
    const admin = (await client.query<{ id: string }>('INSERT INTO "User" (id, email, "passwordHash", role, "updatedAt") VALUES (gen_random_uuid(), \'a@example.com\', \'x\', \'admin\', now()) RETURNING id')).rows[0]!.id
    await client.query('INSERT INTO "TotpFactor" ("userId", "sealedSecret", "confirmedAt") VALUES ($1, \'\\x00\', $2)', [admin, minutesAgo(60)])
    const session = (id: string, provenAt: Date | null) => client.query('INSERT INTO "Session" (id, "userId", "secretSalt", "idleExpiresAt", "absoluteExpiresAt", "recoveryCodeProvenAt") VALUES ($1, $2, \'\\x00\', now() + interval \'1 day\', now() + interval \'1 day\', $3)', [id, admin, provenAt])
    await session('00000000-0000-4000-8000-000000000001', minutesAgo(50))
    await session('00000000-0000-4000-8000-000000000002', minutesAgo(70))
    await session('00000000-0000-4000-8000-000000000003', null)
  })
  await applyMigrations(database.url, { connectTimeoutSeconds: 30 })
  const generations = await withClient(database.url, async client => (await client.query<{ id: string, recoveryCodeGeneration: number | null }>('SELECT id, "recoveryCodeGeneration" FROM "Session" ORDER BY id')).rows.map(row => row.recoveryCodeGeneration))
  t.same(generations, [0, null, null], 'proven after the app was confirmed; before it (a factor since replaced); never')
  t.same(await withClient(database.url, async client => (await client.query('SELECT DISTINCT "secondFactorGeneration" AS g FROM "User"')).rows), [{ g: 0 }])
})

t.test('the app a session proved: a code proven since the app was confirmed names that app, an earlier one nothing', async t => {
  const database = await createEmptyDatabase()
  t.teardown(database.drop)
  await applyMigrations(database.url, { connectTimeoutSeconds: 30, migrationsDir: await migrationsUpTo(t.testdir(), '20261206125202_second_factor_notices') })
  await withClient(database.url, async client => {
    const user = async (email: string) => (await client.query<{ id: string }>('INSERT INTO "User" (id, email, "passwordHash", role, "updatedAt") VALUES (gen_random_uuid(), $1, \'x\', \'admin\', now()) RETURNING id', [email])).rows[0]!.id
    const [confirmed, pending] = [await user('a@example.com'), await user('b@example.com')]
    await client.query('INSERT INTO "TotpFactor" ("userId", "sealedSecret", "confirmedAt") VALUES ($1, \'\\x00\', $2), ($3, \'\\x00\', NULL)', [confirmed, minutesAgo(60), pending])
    const session = (id: string, userId: string, provenAt: Date | null) => client.query('INSERT INTO "Session" (id, "userId", "secretSalt", "idleExpiresAt", "absoluteExpiresAt", "totpProvenAt") VALUES ($1, $2, \'\\x00\', now() + interval \'1 day\', now() + interval \'1 day\', $3)', [id, userId, provenAt])
    await session('00000000-0000-4000-8000-000000000001', confirmed, minutesAgo(50))
    await session('00000000-0000-4000-8000-000000000002', confirmed, minutesAgo(70))
    await session('00000000-0000-4000-8000-000000000003', confirmed, null)
    await session('00000000-0000-4000-8000-000000000004', pending, minutesAgo(10))
  })
  await applyMigrations(database.url, { connectTimeoutSeconds: 30 })
  await withClient(database.url, async client => {
    const apps = (await client.query<{ enrolmentId: string }>('SELECT "enrolmentId" FROM "TotpFactor" ORDER BY "userId"')).rows
    t.equal(new Set(apps.map(app => app.enrolmentId)).size, 2, 'every app has an enrolment of its own')
    const proven = (await client.query<{ proven: string | null, app: string | null }>('SELECT s."totpProvenEnrolmentId" AS proven, t."enrolmentId" AS app FROM "Session" s JOIN "TotpFactor" t USING ("userId") ORDER BY s.id')).rows
    t.same(proven.map(row => row.proven === null ? null : row.proven === row.app), [true, null, null, null], 'proven after the app was confirmed; before it (an app since replaced); never; an app never confirmed')
  })
})

// Regression: an old instance removed factors without ending the codes' generation, and kept a
// passkey-only account's codes past its last passkey; after the rollout they counted again.
t.test('the recovery codes\' catch-up: proofs made before an old instance\'s removal end, and codes no factor outlived go', async t => {
  const database = await createEmptyDatabase()
  t.teardown(database.drop)
  await applyMigrations(database.url, { connectTimeoutSeconds: 30 })
  const state = await withClient(database.url, async client => {
    const user = async (email: string) => (await client.query<{ id: string }>('INSERT INTO "User" (id, email, "passwordHash", role, "updatedAt") VALUES (gen_random_uuid(), $1, \'x\', \'admin\', now()) RETURNING id', [email])).rows[0]!.id
    const migratedAt = (await client.query<{ at: Date }>('SELECT started_at AT TIME ZONE \'UTC\' AS at FROM _prisma_migrations WHERE migration_name = \'20261206122445_recovery_code_generation\'')).rows[0]!.at
    // Minutes apart, beyond the 30 s the script allows for clocks that differ, but where a case is about them.
    const after = (minutes: number, seconds = 0) => new Date(migratedAt.getTime() + minutes * 60_000 + seconds * 1000)
    const passkey = (userId: string, id: string, at: Date) => client.query('INSERT INTO "Passkey" (id, "userId", "publicKey", "deviceType", aaguid, name, "createdAt") VALUES ($1, $2, \'\\x00\', \'singleDevice\', \'\', $1, $3)', [id, userId, at])
    const app = (userId: string, at: Date) => client.query('INSERT INTO "TotpFactor" ("userId", "sealedSecret", "confirmedAt") VALUES ($1, \'\\x00\', $2)', [userId, at])
    const codes = (userId: string, at: Date, usedAt: Date | null = null) => client.query('INSERT INTO "RecoveryCode" (id, "userId", "codeHash", "createdAt", "usedAt") VALUES (gen_random_uuid(), $1, $2, $3, $4)', [userId, `hash-${userId}`, at, usedAt])
    const session = (id: string, userId: string, provenAt: Date) => client.query('INSERT INTO "Session" (id, "userId", "secretSalt", "idleExpiresAt", "absoluteExpiresAt", "recoveryCodeProvenAt", "recoveryCodeGeneration") VALUES ($1, $2, \'\\x00\', now() + interval \'1 day\', now() + interval \'1 day\', $3, 0)', [id, userId, provenAt])
    const audit = (action: string, userId: string, at: Date, details: object) => client.query('INSERT INTO "AuditEvent" (id, action, "actorId", "subjectId", "createdAt", details) VALUES (gen_random_uuid(), $1, $2, $2, $3, $4)', [action, userId, at, details])

    // The app removed on an old instance and set up again: the code proven before counts no more; the set made with the new app stays.
    const root = await user('root@example.com')
    await session('00000000-0000-4000-8000-000000000011', root, after(1))
    await audit('mfa.totp_removed', root, after(2), { confirmed: true })
    await app(root, after(3))
    await codes(root, after(3))
    await session('00000000-0000-4000-8000-000000000012', root, after(4))
    // The only passkey removed on an old instance and another registered: its codes go, and a
    // proof a new instance then took with one of them ends.
    const gina = await user('gina@example.com')
    await codes(gina, after(1))
    await codes(gina, after(1), after(4))
    await audit('passkey.removed', gina, after(2), { passkeyId: 'gina-a' })
    await passkey(gina, 'gina-b', after(3))
    await session('00000000-0000-4000-8000-000000000021', gina, after(4))
    // The only passkey removed and another registered on old instances, a third on a new one, which
    // then removes the second: the codes from before the bare moment go.
    const ada = await user('ada@example.com')
    await codes(ada, after(1))
    await audit('passkey.removed', ada, after(2), { passkeyId: 'ada-a' })
    await audit('passkey.registered', ada, after(3), { passkeyId: 'ada-b' })
    await passkey(ada, 'ada-c', after(4))
    await audit('passkey.registered', ada, after(4), { passkeyId: 'ada-c' })
    await audit('passkey.removed', ada, after(5), { passkeyId: 'ada-b', recoveryCodes: 'kept' })
    // Only new instances: a passkey removed beside another, twice; nothing changes.
    const neo = await user('neo@example.com')
    await codes(neo, after(1))
    await audit('passkey.removed', neo, after(2), { passkeyId: 'neo-a', recoveryCodes: 'kept' })
    await passkey(neo, 'neo-c', after(3))
    await audit('passkey.removed', neo, after(4), { passkeyId: 'neo-b', recoveryCodes: 'kept' })
    await session('00000000-0000-4000-8000-000000000041', neo, after(5))
    // An old instance's bare removal, a stale code proven on a new one, then an app and its new
    // set: the proof ends, the new set stays.
    const sam = await user('sam@example.com')
    await audit('passkey.removed', sam, after(2), { passkeyId: 'sam-a' })
    await passkey(sam, 'sam-b', after(3))
    await session('00000000-0000-4000-8000-000000000051', sam, after(4))
    await app(sam, after(5))
    await audit('mfa.totp_enabled', sam, after(5), {})
    await codes(sam, after(5))
    // A passkey removed and an app confirmed in one millisecond, its codes with it: they stay.
    const cy = await user('cy@example.com')
    await audit('passkey.removed', cy, after(2), { passkeyId: 'cy-a' })
    await app(cy, after(2))
    await codes(cy, after(2))
    // One of two passkeys removed: a factor was left all along, the codes stay.
    const kim = await user('kim@example.com')
    await passkey(kim, 'kim-a', after(-60))
    await codes(kim, after(1))
    await audit('passkey.removed', kim, after(2), { passkeyId: 'kim-b' })
    // A setup cancelled is no removal; nor is anything before the migration.
    const lee = await user('lee@example.com')
    await session('00000000-0000-4000-8000-000000000031', lee, after(1))
    await audit('mfa.totp_removed', lee, after(2), { confirmed: false })
    await audit('passkey.removed', lee, after(-3600), { passkeyId: 'lee-a' })

    // A new instance registered a passkey; an old one, 3 s behind, removed the other a second later:
    // the codes stay (a factor may have been there), the proof ends (cheap to make again).
    const skew = await user('skew@example.com')
    await codes(skew, after(-5))
    await passkey(skew, 'skew-b', after(10))
    await audit('passkey.registered', skew, after(10), { passkeyId: 'skew-b' })
    await audit('passkey.removed', skew, after(10, -2), { passkeyId: 'skew-a' })
    await session('00000000-0000-4000-8000-000000000061', skew, after(20))
    // The app removed by an old instance; the next passkey stamped 2 s before it by another, behind:
    // the proof from before ends.
    const lag = await user('lag@example.com')
    await session('00000000-0000-4000-8000-000000000071', lag, after(1))
    await audit('mfa.totp_removed', lag, after(5), { confirmed: true })
    await passkey(lag, 'lag-p', after(5, -2))
    await audit('passkey.registered', lag, after(5, -2), { passkeyId: 'lag-p' })
    // A passkey removed while another was there, which a new instance removed and registered again later: nothing changes.
    const twice = await user('twice@example.com')
    await codes(twice, after(-5))
    await audit('passkey.removed', twice, after(2), { passkeyId: 'twice-a' })
    await passkey(twice, 'twice-c', after(3))
    await audit('passkey.registered', twice, after(3), { passkeyId: 'twice-c' })
    await audit('passkey.removed', twice, after(4), { passkeyId: 'twice-b', recoveryCodes: 'kept' })
    await passkey(twice, 'twice-b', after(5))
    await audit('passkey.registered', twice, after(5), { passkeyId: 'twice-b' })
    await session('00000000-0000-4000-8000-000000000081', twice, after(6))

    // The last two passkeys removed 10 s apart on old instances, another registered on one: the codes go.
    const duo = await user('duo@example.com')
    await codes(duo, after(1))
    await audit('passkey.removed', duo, after(2), { passkeyId: 'duo-a' })
    await audit('passkey.removed', duo, after(2, 10), { passkeyId: 'duo-b' })
    await passkey(duo, 'duo-c', after(5))
    await audit('passkey.registered', duo, after(5), { passkeyId: 'duo-c' })
    // Codes stamped 18 s after a bare moment by a clock running ahead: made before it all the same, they go.
    const ahead = await user('ahead@example.com')
    await codes(ahead, after(2, 18))
    await audit('mfa.recovery_codes_regenerated', ahead, after(2, 18), {})
    await audit('passkey.removed', ahead, after(2), { passkeyId: 'ahead-a' })
    await passkey(ahead, 'ahead-b', after(6))
    await session('00000000-0000-4000-8000-000000000091', ahead, after(7))

    // The app removed by an old instance 15 s behind, just as the migration began: counted all the same.
    const early = await user('early@example.com')
    await session('00000000-0000-4000-8000-000000000101', early, after(-10))
    await audit('mfa.totp_removed', early, after(0, -15), { confirmed: true })
    await app(early, after(5))
    await audit('mfa.totp_enabled', early, after(5), {})

    const read = async () => ({
      proofs: (await client.query('SELECT id, "recoveryCodeGeneration" AS g FROM "Session" ORDER BY id')).rows.map(row => [String(row.id).slice(-3).replace(/^0/, ''), row.g]),
      codes: (await client.query('SELECT u.email FROM "RecoveryCode" c JOIN "User" u ON u.id = c."userId" ORDER BY u.email')).rows.map(row => row.email)
    })
    await client.query(recoveryCodeCatchUp)
    const first = await read()
    await client.query(recoveryCodeCatchUp)
    t.same(await read(), first, 'running it again changes nothing')
    return first
  })
  t.same(state.proofs, [['11', null], ['12', 0], ['21', null], ['31', 0], ['41', 0], ['51', null], ['61', null], ['71', null], ['81', 0], ['91', null], ['101', null]], 'the proofs before a bare moment\'s next set end (a moment the clocks leave in doubt too); those with a new set, no removal, or only new instances\' removals stay')
  t.same(state.codes, ['cy@example.com', 'kim@example.com', 'neo@example.com', 'root@example.com', 'sam@example.com', 'skew@example.com', 'twice@example.com'], 'gina\'s and ada\'s codes outlived their last passkey and go; where the clocks leave it in doubt, they stay')
})
