// The first admin: created or promoted from the command line, or bootstrapped at start from ADMIN_EMAIL; audited either way.
import type { PrismaClient } from '../../db/prisma.js'
import type { Sql } from '../../db/sql.js'
import { apiError } from '../../errors.js'
import type { PasswordService } from '../passwords/passwords.js'
import { toApiUser, type ApiUser } from '../accounts/api-user.js'
import { activeAdminCount, lockUser, promoteToAdmin, userByEmail, userById } from '../accounts/user-store.js'
import { canonical } from '../accounts/canonical.js'
import { needsProvenAddress } from '../accounts/roles.js'
import { createAccount, type Registration } from '../accounts/users.js'
import { createAuditService } from './audit.js'

export interface AdminAccountDeps {
  prisma: PrismaClient
  /** The pool under `prisma`: an account is created by a statement of its own (`insertAccount`). */
  sql: Sql
  passwords: PasswordService
  now?: () => Date
  /**
   * Told when a new account's audit entry could not be written (the account, one statement of
   * its own, exists by then). Default: thrown.
   */
  onAuditError?: (error: unknown) => void
}

/** Who made the change, in the audit entry's details: no user acts, so no actor. */
type AdminVia = 'cli' | 'bootstrap'

/** What a promotion changed: nothing, when the account was an active admin already. */
export interface Promotion {
  user: ApiUser
  promoted: boolean
  reactivated: boolean
}

/**
 * `unproven`: the address's account is nobody the operator vouched for (see bootstrap);
 * `inactive`: it is deactivated, and stays so. Nothing changed in either case.
 */
export type BootstrapOutcome = 'admin-exists' | 'created' | 'promoted' | 'unproven' | 'inactive'

export function createAdminAccounts ({ prisma, sql, passwords, now = () => new Date(), onAuditError = error => { throw error } }: AdminAccountDeps) {
  const audit = createAuditService({ prisma, now, onError: onAuditError })

  /**
   * Makes the account of `email` an admin; its audit entries (no actor, `details.via`) commit
   * with the change. A deactivated account is refused (USER_INACTIVE) unless `reactivate`:
   * one deactivated as compromised must not come back, with its old password, unnoticed. An
   * account whose address was never proven is refused (USER_UNVERIFIED) unless `unverified`
   * (the operator vouches for it): anyone can register an address, a colleague's included.
   */
  async function promote (email: string, { reactivate = false, unverified = false, via = 'cli' }: { reactivate?: boolean, unverified?: boolean, via?: AdminVia } = {}): Promise<Promotion> {
    return await prisma.$transaction(async tx => {
      const found = await userByEmail(tx, canonical(email), { id: true })
      // Read again under the row's lock: the role and state this change replaces.
      if (found !== null) await lockUser(tx, found.id)
      const before = found === null ? null : await userById(tx, found.id, { id: true, role: true, isActive: true, emailVerifiedAt: true })
      if (before === null) throw apiError('NOT_FOUND')
      if (!before.isActive && !reactivate) throw apiError('USER_INACTIVE')
      if (needsProvenAddress(before.role, 'admin', before.emailVerifiedAt) && !unverified) throw apiError('USER_UNVERIFIED')
      const user = toApiUser(await promoteToAdmin(tx, before.id, reactivate))
      const entry = { actorId: null, subjectId: before.id }
      // Said in the trail: the operator vouched for an account whose address nobody proved.
      const vouched = before.emailVerifiedAt === null ? { unverified: true } : {}
      if (before.role !== 'admin') await audit.recordIn(tx, { ...entry, action: 'user.role_changed', details: { from: before.role, to: 'admin', via, ...vouched } })
      if (!before.isActive) await audit.recordIn(tx, { ...entry, action: 'user.activated', details: { via } })
      return { user, promoted: before.role !== 'admin', reactivated: !before.isActive }
    })
  }

  /**
   * A new account with role admin, under the same password policy as everyone. The operator
   * vouches for the address, so it counts as verified (REQUIRE_EMAIL_VERIFICATION must not
   * lock the first admin out). Audited as a role change from none, `created: true`.
   */
  async function createAdmin (input: Registration, via: AdminVia = 'cli'): Promise<ApiUser> {
    const user = await createAccount({ sql, passwords, now }, input, 'admin', true)
    await audit.record({ actorId: null, subjectId: user.id, action: 'user.role_changed', details: { from: null, to: 'admin', via, created: true } })
    return user
  }

  return {
    createAdmin,
    promote,

    /**
     * When no active admin exists: promotes the account of `email`, or creates it with
     * `password`. Does nothing once any admin exists, so it is safe on every start. An
     * existing account is promoted only if its owner proved the address (verified) or the
     * operator's `password` is its password: anyone may register the address ADMIN_EMAIL
     * names while no admin exists, and must not become admin by it. A deactivated account
     * is never reactivated here (the variable stays set across restarts): `admin:promote
     * --reactivate` does that, on purpose.
     */
    async bootstrap (email: string, password: string | undefined): Promise<BootstrapOutcome> {
      if (await activeAdminCount(prisma) > 0) return 'admin-exists'
      const found = await userByEmail(prisma, canonical(email), { isActive: true, emailVerifiedAt: true, passwordHash: true })
      if (found !== null) {
        if (!found.isActive) return 'inactive'
        const vouched = found.emailVerifiedAt !== null || (password !== undefined && await passwords.verify(found.passwordHash, password))
        if (!vouched) return 'unproven'
        // Proven by ADMIN_PASSWORD, or by the address (checked again as it is promoted; the
        // account is looked up again by its address, as the operator named it).
        const outcome = await promote(email, { via: 'bootstrap', unverified: found.emailVerifiedAt === null }).catch((error: { code?: string }) => {
          // Deactivated since it was read.
          if (error.code === 'USER_INACTIVE') return 'inactive' as const
          throw error
        })
        // Another instance starting at the same moment promoted it first.
        return outcome === 'inactive' ? outcome : outcome.promoted ? 'promoted' : 'admin-exists'
      }
      if (password === undefined) throw new Error('ADMIN_PASSWORD is required to create the ADMIN_EMAIL account')
      try {
        await createAdmin({ email, password }, 'bootstrap')
      } catch (error) {
        // Another instance starting at the same moment created it first.
        if ((error as { code?: string }).code === 'USER_EXISTS') return 'admin-exists'
        throw error
      }
      return 'created'
    }
  }
}
