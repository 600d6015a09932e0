// `npm run admin:create -- --email E [--password P] [--username U]` and `npm run admin:promote -- --email E`.
import { parseArgs } from 'node:util'
import AjvCompiler from '@fastify/ajv-compiler'
import { Type } from '@sinclair/typebox'
import { read } from 'read'
import { loadConfig } from '../config.js'
import { openDatabase } from '../db/open.js'
import { createPool, createPrisma } from '../db/prisma.js'
import { applyMigrations } from '../db/schema-engine.js'
import { Email, NewPassword, Username } from '../schemas/common.js'
import { createAdminAccounts } from '../services/admin/first-admin.js'
import { passwordServiceFor } from '../services/index.js'

const usage = 'usage: admin.ts create --email E [--password P] [--username U] | admin.ts promote --email E'

/**
 * The password, never echoed: from a silent prompt (asked twice) on a terminal, else the
 * first line of standard input, so scripts can pipe it without putting it in `ps`.
 */
async function askPassword (): Promise<string> {
  if (process.stdin.isTTY === true) {
    const first = await read({ prompt: 'Password: ', silent: true, replace: '', output: process.stderr })
    const second = await read({ prompt: 'Password again: ', silent: true, replace: '', output: process.stderr })
    if (first !== second) throw new Error('the passwords differ')
    return first
  }
  let input = ''
  for await (const chunk of process.stdin) input += String(chunk)
  return input.split(/\r?\n/)[0] ?? ''
}

async function main (): Promise<string> {
  const { positionals, values } = parseArgs({
    options: { email: { type: 'string' }, password: { type: 'string' }, username: { type: 'string' } },
    allowPositionals: true
  })
  const [command] = positionals
  if ((command !== 'create' && command !== 'promote') || values.email === undefined || positionals.length > 1) throw new Error(usage)

  const config = loadConfig()
  const input = command === 'create'
    ? { email: values.email, password: values.password ?? await askPassword(), ...(values.username === undefined ? {} : { username: values.username }) }
    : { email: values.email }
  // The same rules as POST /auth/register.
  const schema = Type.Object({
    email: Email,
    password: Type.Optional(NewPassword({ minLength: config.PASSWORD_MIN_LENGTH, maxLength: config.PASSWORD_MAX_LENGTH })),
    username: Type.Optional(Username)
  })
  const validate = AjvCompiler()({}, { customOptions: {} })({ schema, method: 'POST', url: '/cli', httpPart: 'body' })
  if (validate(input) !== true) throw new Error(`invalid input: ${validate.errors?.map(e => `${e.instancePath.slice(1)} ${e.message ?? ''}`).join(', ') ?? ''}`)

  const database = await openDatabase(config, 'tool', waitingFor)
  const pool = createPool(database)
  const prisma = createPrisma(pool)
  const passwords = passwordServiceFor(config)
  try {
    // Beside a running service, its schema is the one to use: it migrated at its start.
    if (database.guest !== true) await applyMigrations(database.url, { connectTimeoutSeconds: config.DATABASE_CONNECT_TIMEOUT_SECONDS })
    const accounts = createAdminAccounts({ prisma, sql: pool, passwords })
    const user = 'password' in input
      ? await accounts.createAdmin(input)
      : await accounts.promote(input.email).catch((error: { code?: string }) => {
        throw error.code === 'NOT_FOUND' ? new Error(`no account with the email ${input.email}`) : error
      })
    // The account has no second factor yet: with the rule on, the admin API waits for one.
    const enrol = config.REQUIRE_MFA_FOR_ADMINS ? '; the admin API answers MFA_ENROLMENT_REQUIRED until they set up a second factor (POST /auth/mfa/totp after logging in)' : ''
    return `${command === 'create' ? 'Created' : 'Promoted'} admin ${user.email} (${user.id})${enrol}`
  } finally {
    await passwords.close()
    await prisma.$disconnect()
    await pool.end()
    await database.stop()
  }
}

/** Said on standard error while another command holds the embedded database. */
function waitingFor (holder: { pid: number } | null): void {
  console.error(`admin: waiting for process ${holder?.pid ?? '(starting)'} to let go of the embedded database…`)
}

try {
  console.log(await main())
} catch (error) {
  // Expected failures get one line: bad input, an existing account, an unknown email, a busy database.
  console.error(`admin: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
}
