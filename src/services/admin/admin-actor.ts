// An admin acting through the admin API, checked again inside the change it makes.
import { lockFor } from '../../db/locks.js'
import type { Transaction } from '../../db/prisma.js'
import { apiError } from '../../errors.js'
import { hasPermission, type Permission } from '../accounts/roles.js'
import { shareUser } from '../accounts/user-store.js'
import type { ReauthenticationService } from '../mfa/reauthentication.js'
import type { Actor } from './audit.js'

/** Who acts, on which session and from where; `confirm` runs first in the change's transaction. */
export interface AdminActor extends Actor {
  sessionId: string
  /**
   * Refuses the change (401 AUTH_SESSION_REVOKED, 403 FORBIDDEN or MFA_ENROLMENT_REQUIRED)
   * unless the caller still holds `permission` on a live admin session as the change commits.
   * The route's guards ran as the request's headers came in; a body held back, or sent in the
   * same moment as a demotion, would otherwise act with the powers of that moment.
   */
  confirm: (tx: Transaction) => Promise<void>
}

/**
 * Every admin change takes the "admins" lock and then the caller's row, before any other row:
 * a demotion, deactivation or deletion of the caller (which take the "admins" lock) and an end
 * of their sessions or factors (which write their row) either commit before the check, and are
 * seen, or wait for the change to commit. One order for all admin changes, so two admins acting
 * on each other at once take turns rather than deadlock.
 */
export function adminActors (reauthentication: Pick<ReauthenticationService, 'assertAdminSession'>) {
  return function adminActor (caller: { userId: string, sessionId: string, ip: string }, permission: Permission): AdminActor {
    return {
      ...caller,
      async confirm (tx) {
        await lockFor(tx, 'admins')
        await shareUser(tx, caller.userId)
        const role = await reauthentication.assertAdminSession(caller.userId, caller.sessionId, tx)
        if (!hasPermission(role, permission)) throw apiError('FORBIDDEN')
      }
    }
  }
}

export type AdminActors = ReturnType<typeof adminActors>
