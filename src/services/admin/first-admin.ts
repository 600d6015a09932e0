// The first admin: created or promoted from the command line, or bootstrapped at start from ADMIN_EMAIL.
import type { PrismaClient } from '../../db/prisma.js'
import type { Sql } from '../../db/sql.js'
import { apiError } from '../../errors.js'
import type { PasswordService } from '../passwords/passwords.js'
import { toApiUser, type ApiUser } from '../accounts/api-user.js'
import { activeAdminCount, promoteToAdmin, userByEmail } from '../accounts/user-store.js'
import { canonical } from '../accounts/canonical.js'
import { createAccount, type Registration } from '../accounts/users.js'

export interface AdminAccountDeps {
  prisma: PrismaClient
  /** The pool under `prisma`: an account is created by a statement of its own (`insertAccount`). */
  sql: Sql
  passwords: PasswordService
  now?: () => Date
}

/** `unproven`: the address's account is nobody the operator vouched for (see bootstrap); nothing changed. */
export type BootstrapOutcome = 'admin-exists' | 'created' | 'promoted' | 'unproven'

export function createAdminAccounts ({ prisma, sql, passwords, now = () => new Date() }: AdminAccountDeps) {
  async function promote (email: string): Promise<ApiUser> {
    const found = await userByEmail(prisma, canonical(email), { id: true })
    if (found === null) throw apiError('NOT_FOUND')
    return toApiUser(await promoteToAdmin(prisma, found.id))
  }

  return {
    /**
     * A new account with role admin, under the same password policy as everyone. The
     * operator vouches for the address, so it counts as verified (REQUIRE_EMAIL_VERIFICATION
     * must not lock the first admin out).
     */
    createAdmin: (input: Registration): Promise<ApiUser> => createAccount({ sql, passwords, now }, input, 'admin', true),

    /** Makes an existing account an (active) admin. */
    promote,

    /**
     * When no active admin exists: promotes the account of `email`, or creates it with
     * `password`. Does nothing once any admin exists, so it is safe on every start. An
     * existing account is promoted only if its owner proved the address (verified) or the
     * operator's `password` is its password: anyone may register the address ADMIN_EMAIL
     * names while no admin exists, and must not become admin by it.
     */
    async bootstrap (email: string, password: string | undefined): Promise<BootstrapOutcome> {
      if (await activeAdminCount(prisma) > 0) return 'admin-exists'
      const found = await userByEmail(prisma, canonical(email), { emailVerifiedAt: true, passwordHash: true })
      if (found !== null) {
        const vouched = found.emailVerifiedAt !== null || (password !== undefined && await passwords.verify(found.passwordHash, password))
        if (!vouched) return 'unproven'
        await promote(email)
        return 'promoted'
      }
      if (password === undefined) throw new Error('ADMIN_PASSWORD is required to create the ADMIN_EMAIL account')
      try {
        await createAccount({ sql, passwords, now }, { email, password }, 'admin', true)
      } catch (error) {
        // Another instance starting at the same moment created it first.
        if ((error as { code?: string }).code === 'USER_EXISTS') return 'admin-exists'
        throw error
      }
      return 'created'
    }
  }
}
