// An admin acting through the admin API, checked again inside the change it makes.
import { lockFor, shareLockFor } from '../../db/locks.js'
import type { Transaction } from '../../db/prisma.js'
import { apiError } from '../../errors.js'
import { hasPermission, type Permission } from '../accounts/roles.js'
import { lockUser, shareUser } from '../accounts/user-store.js'
import type { FreshnessCaller, ReauthenticationService } from '../mfa/reauthentication.js'
import { shareSession } from '../sessions/session-store.js'
import type { Actor } from './audit.js'

/** What an admin change touches, for `confirm`. */
export interface AdminChange {
  /** The user it changes: locked for it, and 404 NOT_FOUND once the caller is confirmed, when gone. */
  target?: string
  /** It may take an admin away (a demotion, a deactivation, a deletion): it runs alone, as the last-admin rule needs. */
  exclusive?: boolean
}

/** Who acts, on which session and from where; `confirm` runs first in the change's transaction. */
export interface AdminActor extends Actor {
  sessionId: string
  /**
   * Refuses the change (401 AUTH_SESSION_REVOKED, 403 FORBIDDEN, MFA_ENROLMENT_REQUIRED or
   * REAUTHENTICATION_REQUIRED) unless the caller still holds the route's permission, on a live
   * admin session, freshly authenticated where the route asks it, as the change commits. The
   * route's guards ran as the request's headers came in; a body held back, or sent in the same
   * moment as a demotion, would otherwise act with the powers of that moment.
   */
  confirm: (tx: Transaction, change?: AdminChange) => Promise<void>
}

/**
 * The locks, always in this order: the "admins" lock (shared, or alone for a change that may
 * take an admin away), then the users' rows in the order of their ids (the caller's shared,
 * the target's for update), then the caller's session. A removal of the caller's powers writes
 * one of those rows (a demotion, a deactivation, an end of their sessions or factors) or the
 * session's (a logout, a reuse's remedy), so it commits before the check, and is seen, or waits
 * for the change. One order for every admin change, so admins acting on each other at once
 * take turns rather than deadlock, and changes that take no admin away run side by side.
 */
async function lockInOrder (tx: Transaction, callerId: string, sessionId: string, { target, exclusive = false }: AdminChange): Promise<boolean> {
  await (exclusive ? lockFor(tx, 'admins') : shareLockFor(tx, 'admins'))
  let targetFound = true
  for (const id of [...new Set([callerId, target ?? callerId])].sort()) {
    if (id === target) targetFound = await lockUser(tx, id)
    else await shareUser(tx, id)
  }
  await shareSession(tx, sessionId)
  return targetFound
}

export function adminActors (reauthentication: Pick<ReauthenticationService, 'assertAdminSession' | 'assertFresh'>) {
  return function adminActor (caller: Actor & FreshnessCaller, permission: Permission, { fresh }: { fresh: boolean }): AdminActor {
    return {
      ...caller,
      async confirm (tx, change = {}) {
        const targetFound = await lockInOrder(tx, caller.userId, caller.sessionId, change)
        const role = await reauthentication.assertAdminSession(caller.userId, caller.sessionId, tx)
        if (!hasPermission(role, permission)) throw apiError('FORBIDDEN')
        if (fresh) await reauthentication.assertFresh(caller, tx)
        if (!targetFound) throw apiError('NOT_FOUND')
      }
    }
  }
}

export type AdminActors = ReturnType<typeof adminActors>
