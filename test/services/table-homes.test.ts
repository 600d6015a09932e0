// One home per table: every Prisma query of a table is in the one module named for it, hand-written SQL writes a table only there (or in the statements that span tables), and the statements on the pool are in the stores.
import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import t from 'tap'

const root = join(import.meta.dirname, '..', '..')
const src = join(root, 'src')

// The README's "Layout" table says the same. Profile is written through its user (nested writes in the user store).
const homes: Record<string, string | null> = {
  User: 'services/accounts/user-store.ts',
  Profile: null,
  Session: 'services/sessions/session-store.ts',
  Passkey: 'services/passkeys/passkey-store.ts',
  TotpFactor: 'services/mfa/factors.ts',
  RecoveryCode: 'services/mfa/second-factors.ts',
  MfaChallenge: 'services/mfa/challenges.ts',
  WebauthnChallenge: 'services/passkeys/ceremony-challenges.ts',
  OneTimeToken: 'services/tokens/one-time-tokens.ts',
  OutboxMail: 'services/mail/outbox.ts',
  Setting: 'services/admin/settings.ts',
  AuditEvent: 'services/admin/audit.ts',
  LoginFailure: 'services/sessions/login-throttle.ts'
}

async function sourceFiles (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries.filter(entry => entry.isFile() && entry.name.endsWith('.ts') && !join(entry.parentPath, entry.name).includes(`${join(src, 'generated')}`))
    .map(entry => join(entry.parentPath, entry.name))
}

const files = await Promise.all((await sourceFiles(src)).map(async path => ({ path: relative(src, path).split('\\').join('/'), text: await readFile(path, 'utf8') })))

t.test('every model of the schema has its home here', async t => {
  const schema = await readFile(join(root, 'prisma', 'schema.prisma'), 'utf8')
  const models = [...schema.matchAll(/^model (\w+) \{/gm)].map(match => match[1])
  t.same(models.toSorted(), Object.keys(homes).toSorted())
})

t.test("each table's Prisma queries are in its home, and nowhere else", async t => {
  for (const [model, home] of Object.entries(homes)) {
    const delegate = model[0]?.toLowerCase() + model.slice(1)
    const query = new RegExp(`\\.${delegate}\\.(find|create|update|upsert|delete|count|aggregate|groupBy)\\w*\\(`)
    const found = files.filter(file => query.test(file.text)).map(file => file.path)
    t.same(found, home === null ? [] : [home], model)
  }
})

// The statements that span tables to save round trips (README, "Layout"), with the tables they
// write besides their own: a new account (its profile, first token, mail and audit entry) and the
// session a login opens (the failures it forgets, its audit entry, the owner's notice and its time).
const spanningWrites: Record<string, string[]> = {
  'services/accounts/user-store.ts': ['Profile', 'OneTimeToken', 'OutboxMail', 'AuditEvent'],
  'services/sessions/session-store.ts': ['LoginFailure', 'AuditEvent', 'OutboxMail', 'User']
}

t.test("hand-written SQL writes a table only in its home, or in a statement that spans tables (regression: a session store's UPDATE of User went unseen)", async t => {
  for (const file of files) {
    const written = new Set([...file.text.matchAll(/\b(?:INSERT INTO|UPDATE|DELETE FROM)\s+"(\w+)"/g)].map(match => match[1]))
    const own = Object.entries(homes).filter(([, home]) => home === file.path).map(([model]) => model)
    const allowed = new Set([...own, ...(spanningWrites[file.path] ?? [])])
    t.same([...written].filter(table => table === undefined || !allowed.has(table)), [], file.path)
  }
  t.ok(files.some(file => /INSERT INTO "AuditEvent"/.test(file.text)), 'the pattern sees the statements it is about')
})

t.test('the statements on the pool are in the stores', async t => {
  const found = files.filter(file => /import \{[^}]*\bstatement\b[^}]*\} from '[./]*db\/sql\.js'/.test(file.text)).map(file => file.path).toSorted()
  t.same(found, ['services/accounts/user-store.ts', 'services/mail/outbox.ts', 'services/sessions/session-store.ts'])
})
