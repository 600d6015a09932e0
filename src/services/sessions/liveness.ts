// "Is this session live": the one rule, as a Prisma filter, as SQL and in TypeScript (test/services/sessions/liveness.test.ts pins that they agree).
import type { Prisma } from '../../generated/prisma/client.js'

/** The columns the rule reads. */
export interface SessionTimes {
  revokedAt: Date | null
  idleExpiresAt: Date
  absoluteExpiresAt: Date
}

/** The earlier of the idle and absolute limits: when the session's refresh token stops working. */
export function expiryOf (session: Pick<SessionTimes, 'idleExpiresAt' | 'absoluteExpiresAt'>): Date {
  return session.idleExpiresAt < session.absoluteExpiresAt ? session.idleExpiresAt : session.absoluteExpiresAt
}

/**
 * Where a session stands at `at`: revoked (ended, or its user deactivated), expired (idle or
 * absolute limit reached), or live. A deactivated user's sessions are never live, even in
 * the moment between the deactivation and the revocation of their sessions.
 */
export function sessionStateAt (session: SessionTimes, user: { isActive: boolean }, at: Date): 'live' | 'revoked' | 'expired' {
  if (session.revokedAt !== null || !user.isActive) return 'revoked'
  if (expiryOf(session) <= at) return 'expired'
  return 'live'
}

/** The rule as a Prisma filter on Session. */
export function liveSessionWhere (at: Date) {
  return { revokedAt: null, idleExpiresAt: { gt: at }, absoluteExpiresAt: { gt: at }, user: { isActive: true } } satisfies Prisma.SessionWhereInput
}

/**
 * The rule as a SQL condition on the "Session" row `alias`, with `at` the placeholder of the
 * moment (a timestamp parameter), for the hand-written statements.
 */
export function liveSessionSql (alias: string, at: string): string {
  return `${alias}."revokedAt" IS NULL AND ${alias}."idleExpiresAt" > ${at} AND ${alias}."absoluteExpiresAt" > ${at}
    AND EXISTS (SELECT 1 FROM "User" live_user WHERE live_user.id = ${alias}."userId" AND live_user."isActive")`
}
