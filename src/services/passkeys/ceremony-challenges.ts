// WebAuthn challenges: issued with ceremony options, kept in the database (any instance checks them), used once.
import { randomBytes } from 'node:crypto'
import type { Db, PrismaClient } from '../../db/prisma.js'
import { iso } from '../../db/sql.js'
import { Prisma } from '../../generated/prisma/client.js'

/** A passkey challenge lives five minutes, like the login's second-factor challenge (docs/second-factor.md, Passkeys). */
export const CEREMONY_TTL_SECONDS = 300

// Every challenge this service issues is base64url; anything else (a NUL, which PostgreSQL's
// text cannot hold, among others) is not one of ours and never reaches the database.
const CHALLENGE = /^[A-Za-z0-9_-]{1,128}$/

/**
 * What a challenge was issued for. Registration and reauthentication are bound to the
 * session, a second factor to the login's MfaChallenge, a passwordless sign-in to nothing.
 */
export type CeremonyPurpose = 'registration' | 'login' | 'second_factor' | 'reauthentication'

/** Rows a request's sweep deletes at most. */
const SWEEP_LIMIT = 1000

export interface CeremonyChallengeDeps {
  prisma: PrismaClient
  now: () => Date
}

/**
 * Deletes up to `limit` of everyone's ceremony challenges expired at `at`, the longest expired
 * first, skipping rows another transaction holds: a sweep never waits, so requests at once
 * neither queue on it nor deadlock in it, and an anonymous request's sweep is bounded however
 * many expired at once (the retention pass works off the rest). How many.
 */
export async function sweepExpiredCeremonies (db: Db, at: Date, limit = SWEEP_LIMIT): Promise<number> {
  return await db.$executeRaw`DELETE FROM "WebauthnChallenge" WHERE challenge IN (SELECT challenge FROM "WebauthnChallenge" WHERE "expiresAt" < ${iso(at)}::timestamp(3) ORDER BY "expiresAt" LIMIT ${limit} FOR UPDATE SKIP LOCKED)`
}

/**
 * Inside a remedy's transaction (accounts/unfinished-changes.ts): ends the passkey registrations
 * under way on any session of the user. Each was begun with the password of then, which the
 * remedy may have just replaced, on a session the remedy may leave live (a password change keeps
 * the caller's): the registration must not finish after it.
 */
export async function voidRegistrationCeremonies (db: Db, userId: string): Promise<void> {
  await db.$executeRaw(registrationCeremoniesDeletion(userId))
}

/**
 * Runs under the user's row: found by `bindingId`'s index, not by reading every ceremony of
 * everyone, however many an attack has left (test/routes/expiry-sweeps.test.ts reads its plan).
 */
export const registrationCeremoniesDeletion = (userId: string) =>
  Prisma.sql`DELETE FROM "WebauthnChallenge" WHERE purpose = 'registration' AND "bindingId" IN (SELECT id FROM "Session" WHERE "userId" = ${userId}::uuid)`

export function createCeremonyChallenges ({ prisma, now }: CeremonyChallengeDeps) {
  return {
    /** A new challenge of 256 random bits (base64url), good for one ceremony of `purpose` bound to `bindingId`. */
    async issue (purpose: CeremonyPurpose, bindingId: string | null, db: Db = prisma): Promise<string> {
      const at = now()
      const challenge = randomBytes(32).toString('base64url')
      // Expired challenges of anyone are swept here (indexed by expiry): anonymous callers cannot grow the table for long.
      await sweepExpiredCeremonies(db, at)
      await db.webauthnChallenge.create({
        data: { challenge, purpose, bindingId, expiresAt: new Date(at.getTime() + CEREMONY_TTL_SECONDS * 1000), createdAt: at }
      })
      return challenge
    },

    /** Whether a challenge issued for this purpose and binding is live, without spending it (see `consume`). */
    async isLive (db: Db, challenge: string, purpose: CeremonyPurpose, bindingId: string | null): Promise<boolean> {
      if (!CHALLENGE.test(challenge)) return false
      return await db.webauthnChallenge.count({ where: { challenge, purpose, bindingId, expiresAt: { gt: now() } } }) === 1
    },

    /**
     * True once for a live challenge issued for this purpose and binding: it is deleted in the
     * same statement, so of two ceremonies presenting it at most one goes on (no replay).
     */
    async consume (db: Db, challenge: string, purpose: CeremonyPurpose, bindingId: string | null): Promise<boolean> {
      if (!CHALLENGE.test(challenge)) return false
      const { count } = await db.webauthnChallenge.deleteMany({ where: { challenge, purpose, bindingId, expiresAt: { gt: now() } } })
      return count === 1
    }
  }
}

export type CeremonyChallenges = ReturnType<typeof createCeremonyChallenges>
