// The admin CLI: create (password from the command line or standard input, never echoed) and promote (a deactivated account, or one whose address was never proven, only when asked), audited.
import { spawn } from 'node:child_process'
import t from 'tap'
import { createTestDatabase, withClient } from '../helpers/database.js'
import { programArgs } from '../helpers/program.js'

const database = await createTestDatabase()
t.teardown(database.drop)

interface Run { code: number | null, output: string }

function run (args: string[], stdin = '', env: Record<string, string> = {}): Promise<Run> {
  return new Promise(resolve => {
    const child = spawn(process.execPath, [...programArgs('cli/admin'), ...args], {
      // The pool size of the database: the embedded one is a single session, which a pool of
      // one clears at connect of what an earlier command prepared there, as the service does.
      env: { PATH: process.env.PATH, DATABASE_URL: database.url, DATABASE_POOL_SIZE: String(database.poolSize), ARGON2_MEMORY_KIB: '1024', ARGON2_TIME_COST: '1', LOG_LEVEL: 'silent', ...env }
    })
    let output = ''
    child.stdout.on('data', chunk => { output += chunk })
    child.stderr.on('data', chunk => { output += chunk })
    child.stdin.end(stdin)
    child.on('close', code => resolve({ code, output }))
  })
}

const roleOf = (email: string) => withClient(database.url, async client =>
  (await client.query<{ role: string }>('SELECT role FROM "User" WHERE email = $1', [email])).rows[0]?.role)
const stateOf = (email: string) => withClient(database.url, async client =>
  (await client.query<{ role: string, isActive: boolean }>('SELECT role, "isActive" FROM "User" WHERE email = $1', [email])).rows[0])
// The entries of one command share their time: role changes first.
const auditOf = (email: string) => withClient(database.url, async client =>
  (await client.query<{ action: string, actorId: string | null, details: unknown }>(
    'SELECT a.action, a."actorId", a.details FROM "AuditEvent" a JOIN "User" u ON u.id = a."subjectId" WHERE u.email = $1 ORDER BY a."createdAt", a.action DESC', [email])).rows)

t.test('create with --password', async t => {
  const result = await run(['create', '--email', 'Root@Example.com', '--password', 'a long admin passphrase 1'])
  t.equal(result.code, 0, result.output)
  t.match(result.output, /Created admin root@example.com/)
  t.notMatch(result.output, /passphrase/, 'the password is not echoed')
  t.equal(await roleOf('root@example.com'), 'admin')
  t.same(await auditOf('root@example.com'), [{ action: 'user.role_changed', actorId: null, details: { from: null, to: 'admin', via: 'cli', created: true } }], 'audited, with no actor')
})

t.test('with REQUIRE_MFA_FOR_ADMINS, the new admin is told to set up a second factor', async t => {
  const result = await run(['create', '--email', 'enrol@example.com', '--password', 'a long admin passphrase 2'], '', { REQUIRE_MFA_FOR_ADMINS: 'true' })
  t.equal(result.code, 0, result.output)
  t.match(result.output, /Created admin enrol@example.com .*MFA_ENROLMENT_REQUIRED until they set up a second factor/)
  t.notMatch((await run(['promote', '--email', 'enrol@example.com'])).output, /second factor/, 'not said when the rule is off')
})

t.test('create with the password on standard input (what the prompt reads when not on a terminal)', async t => {
  const result = await run(['create', '--email', 'piped@example.com', '--username', 'piped_admin'], 'a piped admin passphrase\n')
  t.equal(result.code, 0, result.output)
  t.notMatch(result.output, /passphrase/)
  t.equal(await roleOf('piped@example.com'), 'admin')
})

t.test('refusals: existing account, weak password, bad email, bad usage', async t => {
  const refusals = [
    [['create', '--email', 'root@example.com', '--password', 'another long passphrase'], /already exists/],
    [['create', '--email', 'weak@example.com', '--password', 'password1'], /too common/],
    [['create', '--email', 'weak@example.com', '--password', 'short'], /invalid input: password/],
    [['create', '--email', 'not-an-email', '--password', 'a long admin passphrase'], /invalid input: email/],
    [['delete', '--email', 'root@example.com'], /usage/],
    [['promote'], /usage/],
    [['create', '--email', 'new@example.com', '--password', 'a long admin passphrase 3', '--unverified'], /usage/],
    [['promote', '--email', 'nobody@example.com'], /no account with the email/]
  ] as const
  // At once: none of them changes anything another reads.
  const results = await Promise.all(refusals.map(([args]) => run([...args])))
  refusals.forEach(([args, message], i) => {
    t.equal(results[i]?.code, 1, args.join(' '))
    t.match(results[i]?.output, message)
  })
  t.equal(await roleOf('weak@example.com'), undefined, 'nothing created')
})

t.test('promote an existing user', async t => {
  await withClient(database.url, client => client.query(
    'INSERT INTO "User" (id, email, "passwordHash", "emailVerifiedAt", "updatedAt") VALUES (gen_random_uuid(), $1, $2, now(), now())', ['member@example.com', 'x']))
  const result = await run(['promote', '--email', 'MEMBER@example.com'])
  t.equal(result.code, 0, result.output)
  t.match(result.output, /^Promoted admin member@example.com \(/)
  t.equal(await roleOf('member@example.com'), 'admin')
  t.same(await auditOf('member@example.com'), [{ action: 'user.role_changed', actorId: null, details: { from: 'user', to: 'admin', via: 'cli' } }])
  const again = await run(['promote', '--email', 'member@example.com'])
  t.match(again.output, /member@example.com \(.*\) is already an active admin: nothing changed/)
  t.equal((await auditOf('member@example.com')).length, 1, 'nothing more recorded')
})

t.test('promote finds an account whose address an older rule took (regression: refused as an invalid email)', async t => {
  const older = `${'o'.repeat(70)}@example.com`
  await withClient(database.url, client => client.query(
    'INSERT INTO "User" (id, email, "passwordHash", "emailVerifiedAt", "updatedAt") VALUES (gen_random_uuid(), $1, $2, now(), now())', [older, 'x']))
  const result = await run(['promote', '--email', older])
  t.equal(result.code, 0, result.output)
  t.equal(await roleOf(older), 'admin')
})

t.test('promote refuses a deactivated account unless --reactivate (regression: it came back as admin, with its old password, unrecorded)', async t => {
  await withClient(database.url, client => client.query(
    'INSERT INTO "User" (id, email, "passwordHash", "isActive", "emailVerifiedAt", "updatedAt") VALUES (gen_random_uuid(), $1, $2, false, now(), now())', ['compromised@example.com', 'x']))
  const refused = await run(['promote', '--email', 'compromised@example.com'])
  t.equal(refused.code, 1, refused.output)
  t.match(refused.output, /compromised@example.com is deactivated: not promoted\. Run again with --reactivate/)
  t.same(await stateOf('compromised@example.com'), { role: 'user', isActive: false }, 'nothing changed')
  t.same(await auditOf('compromised@example.com'), [])
  t.match((await run(['create', '--email', 'new@example.com', '--password', 'a long admin passphrase 3', '--reactivate'])).output, /usage/, 'create has nothing to reactivate')
  const reactivated = await run(['promote', '--email', 'compromised@example.com', '--reactivate'])
  t.equal(reactivated.code, 0, reactivated.output)
  t.match(reactivated.output, /Reactivated and promoted admin compromised@example.com .*old password/)
  t.same(await stateOf('compromised@example.com'), { role: 'admin', isActive: true })
  t.same(await auditOf('compromised@example.com'), [
    { action: 'user.role_changed', actorId: null, details: { from: 'user', to: 'admin', via: 'cli' } },
    { action: 'user.activated', actorId: null, details: { via: 'cli' } }
  ])
})

// Regression: whoever registered a colleague's address, never proven, was made admin by it.
t.test('promote refuses an account whose address was never proven, unless --unverified', async t => {
  await withClient(database.url, client => client.query(
    'INSERT INTO "User" (id, email, "passwordHash", "updatedAt") VALUES (gen_random_uuid(), $1, $2, now())', ['squatted@example.com', 'x']))
  const refused = await run(['promote', '--email', 'squatted@example.com'])
  t.equal(refused.code, 1, refused.output)
  t.match(refused.output, /squatted@example.com has never proven its address.*not promoted.*--unverified/)
  t.equal(await roleOf('squatted@example.com'), 'user', 'nothing changed')
  t.same(await auditOf('squatted@example.com'), [])
  const vouched = await run(['promote', '--email', 'squatted@example.com', '--unverified'])
  t.equal(vouched.code, 0, vouched.output)
  t.equal(await roleOf('squatted@example.com'), 'admin', 'the operator vouched for it')
  t.same(await auditOf('squatted@example.com'), [{ action: 'user.role_changed', actorId: null, details: { from: 'user', to: 'admin', via: 'cli', unverified: true } }], 'the trail says the operator vouched')
})
