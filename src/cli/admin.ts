// `npm run admin:create -- --email E [--password P] [--username U]` and `npm run admin:promote -- --email E [--reactivate] [--unverified]`.
import { parseArgs } from 'node:util'
import AjvCompiler from '@fastify/ajv-compiler'
import { Type } from '@sinclair/typebox'
import { read } from 'read'
import { loadConfig, type Config } from '../config.js'
import { openDatabase } from '../db/open.js'
import { createPool, createPrisma } from '../db/prisma.js'
import { applyMigrations } from '../db/schema-engine.js'
import { Email, EmailLookup, NewPassword, Username } from '../schemas/common.js'
import { createAdminAccounts, type Promotion } from '../services/admin/first-admin.js'
import { passwordServiceFor } from '../services/index.js'

const usage = 'usage: admin.ts create --email E [--password P] [--username U] | admin.ts promote --email E [--reactivate] [--unverified]'

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

type Input = { email: string, password: string, username?: string } | { email: string, reactivate: boolean, unverified: boolean }
type Options = { email: string, password?: string | undefined, username?: string | undefined, reactivate?: boolean | undefined, unverified?: boolean | undefined }

/** The command and its options, before anything is read or opened: bad usage is said first. */
function commandOf (): { command: 'create' | 'promote', options: Options } {
  const { positionals, values } = parseArgs({
    options: { email: { type: 'string' }, password: { type: 'string' }, username: { type: 'string' }, reactivate: { type: 'boolean' }, unverified: { type: 'boolean' } },
    allowPositionals: true
  })
  const [command] = positionals
  if ((command !== 'create' && command !== 'promote') || values.email === undefined || positionals.length > 1) throw new Error(usage)
  if (command === 'create' && (values.reactivate !== undefined || values.unverified !== undefined)) throw new Error(usage)
  return { command, options: { ...values, email: values.email } }
}

/** The input, checked by the same rules as POST /auth/register; an account to promote is looked up as any address an account may have. */
async function inputOf (config: Config, { command, options }: ReturnType<typeof commandOf>): Promise<Input> {
  const input = command === 'create'
    ? { email: options.email, password: options.password ?? await askPassword(), ...(options.username === undefined ? {} : { username: options.username }) }
    : { email: options.email, reactivate: options.reactivate === true, unverified: options.unverified === true }
  const schema = Type.Object({
    email: command === 'create' ? Email : EmailLookup,
    password: Type.Optional(NewPassword({ minLength: config.PASSWORD_MIN_LENGTH, maxLength: config.PASSWORD_MAX_LENGTH })),
    username: Type.Optional(Username),
    reactivate: Type.Optional(Type.Boolean()),
    unverified: Type.Optional(Type.Boolean())
  })
  const validate = AjvCompiler()({}, { customOptions: {} })({ schema, method: 'POST', url: '/cli', httpPart: 'body' })
  if (validate(input) !== true) throw new Error(`invalid input: ${validate.errors?.map(e => `${e.instancePath.slice(1)} ${e.message ?? ''}`).join(', ') ?? ''}`)
  return input
}

/** What a promotion did, in words; a reactivated account keeps its old password, which the operator is reminded of. */
function promotionLine ({ user, promoted, reactivated }: Promotion): string {
  const who = `${user.email} (${user.id})`
  if (!promoted && !reactivated) return `${who} is already an active admin: nothing changed`
  const done = reactivated ? `${promoted ? 'Reactivated and promoted' : 'Reactivated'} admin ${who}` : `Promoted admin ${who}`
  return reactivated ? `${done}; it signs in with its old password: if it was deactivated as compromised, have it reset now` : done
}

/** A promotion's refusals, in the words of the command line. */
function refusalOf (email: string) {
  return (error: Error & { code?: string }): never => {
    if (error.code === 'NOT_FOUND') throw new Error(`no account with the email ${email}`)
    if (error.code === 'USER_INACTIVE') throw new Error(`${email} is deactivated: not promoted. Run again with --reactivate to reactivate it as well (with its old password)`)
    if (error.code === 'USER_UNVERIFIED') throw new Error(`${email} has never proven its address, so whoever registered it may not own it: not promoted. Have its password reset first (POST /admin/users/:id/password-reset, or the owner's own POST /auth/password/forgot): the reset proves the address and the password becomes the owner's. Or run again with --unverified if you know the account is theirs`)
    throw error
  }
}

async function main (): Promise<string> {
  const command = commandOf()
  const config = loadConfig()
  const input = await inputOf(config, command)
  const database = await openDatabase(config, 'tool', waitingFor)
  const pool = createPool(database)
  const prisma = createPrisma(pool)
  const passwords = passwordServiceFor(config)
  try {
    // Beside a running service, its schema is the one to use: it migrated at its start.
    if (database.guest !== true) await applyMigrations(database.url, { connectTimeoutSeconds: config.DATABASE_CONNECT_TIMEOUT_SECONDS })
    // The account exists by then: say so, and go on.
    const onAuditError = (error: unknown) => console.error(`admin: the audit entry was not written: ${error instanceof Error ? error.message : String(error)}`)
    const accounts = createAdminAccounts({ prisma, sql: pool, passwords, onAuditError })
    let line: string
    let changed = true
    if ('password' in input) {
      const user = await accounts.createAdmin(input, 'cli')
      line = `Created admin ${user.email} (${user.id})`
    } else {
      const promotion = await accounts.promote(input.email, { reactivate: input.reactivate, unverified: input.unverified, via: 'cli' }).catch(refusalOf(input.email))
      changed = promotion.promoted || promotion.reactivated
      line = promotionLine(promotion)
    }
    // The account may have no second factor yet: with the rule on, the admin API waits for one.
    const enrol = config.REQUIRE_MFA_FOR_ADMINS && changed ? '; the admin API answers MFA_ENROLMENT_REQUIRED until they set up a second factor (POST /auth/mfa/totp after logging in)' : ''
    return `${line}${enrol}`
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
  // Expected failures get one line: bad input, an existing account, an unknown email, a deactivated one, a busy database.
  console.error(`admin: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
}
