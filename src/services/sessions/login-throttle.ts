// Brute-force backoff per login identifier: waits that double after repeated failures, then a bounded lockout.
import { createHmac } from 'node:crypto'
import type { Db, PrismaClient } from '../../db/prisma.js'
import { iso } from '../../db/sql.js'
import { rateLimited } from '../../errors.js'
import { canonical } from '../accounts/canonical.js'
import { oneAtATime } from './one-at-a-time.js'

export interface LoginThrottlePolicy {
  /** Consecutive failures allowed before each further attempt must wait. */
  backoffAfter: number
  /** The first wait, doubled after every further failure... */
  baseSeconds: number
  /** ...up to this. */
  maxSeconds: number
  /** Consecutive failures that lock the identifier... */
  lockoutAfter: number
  /** ...for this long (bounded: a lock always ends by itself; a password reset ends it at once). */
  lockoutSeconds: number
}

export interface LoginThrottleDeps {
  prisma: PrismaClient
  policy: LoginThrottlePolicy
  /** What the identifiers are counted under. */
  keys: IdentifierKeys
  now: () => Date
}

// Gmail delivers every spelling of a local part with dots added or removed to one mailbox.
const DOTS_IGNORED = new Set(['gmail.com', 'googlemail.com'])

/**
 * What each kind of key is tagged with before its input: a key is the HMAC of its kind's tag and
 * then the input, and since no tag is the start of another, no input of one kind (whatever a
 * client sends as an identifier) gives a key of another kind: an account's second-factor key was
 * reachable as a login identifier's, so a stranger who knew the account's id could lock its
 * second step. A tag ends with a NUL, which no tag holds elsewhere; a new kind of key takes a
 * tag of its own here, never an input shaped to differ.
 */
const KIND = {
  identifier: 'identifier\0',
  secondFactor: 'second-factor\0',
  mailbox: 'mailbox\0'
} as const

/**
 * The keys failures and mail budgets are counted under, in the database and in Redis: an
 * HMAC-SHA256 of the identifier's canonical form (case and unicode variants share one key),
 * tagged with its kind (KIND), under a key derived from AUTH_SECRET, so that a copy of either
 * store does not tell which identifiers were tried (regression: an unkeyed SHA-256, which a
 * word list reverses).
 */
export function createIdentifierKeys (key: Buffer) {
  // Still one HMAC a key: the tag is a few more bytes of input.
  const keyOf = (kind: keyof typeof KIND, input: string): string => createHmac('sha256', key).update(KIND[kind]).update(input).digest('base64url')
  const of = (canonicalIdentifier: string): string => keyOf('identifier', canonicalIdentifier)
  const accountKeys = (account: { email: string, username: string | null }): string[] =>
    account.username === null ? [of(account.email)] : [of(account.email), of(account.username)]
  return {
    /** The key of a login identifier, in canonical form: any text a client names an account by. */
    of,

    /** The keys of every identifier an account can log in with (stored email and username are canonical). */
    account: accountKeys,

    /**
     * Every key counted under for an account, its identifiers' and its second factor's: what its
     * deletion clears (the next owner of the address or the name starts afresh; the second
     * factor's, keyed by an id never reused, goes as data kept for nothing).
     */
    everyKeyOf (account: { id: string, email: string, username: string | null }): string[] {
      return [...accountKeys(account), keyOf('secondFactor', account.id)]
    },

    /**
     * The key wrong second-factor proofs of the account are also counted under: of a kind of its
     * own, so that no identifier a login may send reaches it, and no password reset clears it
     * (see ChallengeService.meet), only the account's next completed sign-in or its expiry.
     */
    secondFactor (userId: string): string {
      return keyOf('secondFactor', userId)
    },

    /**
     * The key of the mailbox an address delivers to, as far as the address alone tells: a
     * `+tag` (`ada+1@example.com`) reaches the same mailbox as the address without it, and so
     * do Gmail's dots (`a.da@gmail.com`, and `googlemail.com`), so all spend one budget of
     * mails (regression: each had a budget of its own). Other aliases (a catch-all domain)
     * are the per-client limits' to bound.
     */
    mailbox (email: string): string {
      const address = canonical(email)
      const at = address.lastIndexOf('@')
      const plus = address.indexOf('+')
      const domain = address.slice(at + 1)
      const local = address.slice(0, plus > 0 && plus < at ? plus : at)
      return keyOf('mailbox', DOTS_IGNORED.has(domain) ? `${local.replaceAll('.', '')}@gmail.com` : `${local}@${domain}`)
    }
  }
}

export type IdentifierKeys = ReturnType<typeof createIdentifierKeys>

/** The failures counted against an identifier, as a login reads them (see login-records.ts). */
export interface FailureState {
  failures: number
  lastFailureAt: Date
}

/** Seconds an identifier must wait after `failures` consecutive failures. */
export function waitAfter (failures: number, policy: LoginThrottlePolicy): number {
  if (failures >= policy.lockoutAfter) return policy.lockoutSeconds
  if (failures < policy.backoffAfter) return 0
  return Math.min(policy.baseSeconds * 2 ** (failures - policy.backoffAfter), policy.maxSeconds)
}

/** Rows a failed login's sweep deletes at most. */
const SWEEP_LIMIT = 1000

/**
 * Deletes up to `limit` of everyone's failure counts expired at `at`, the longest expired first,
 * skipping rows another transaction holds (a login forgetting its failures, another sweep): a
 * sweep never waits, so failures at once, an attack's, neither queue on it nor deadlock in it,
 * and a failed login's sweep is bounded however many expired at once (the retention pass works
 * off the rest).
 */
export async function sweepExpiredFailures (db: Db, at: Date, limit = SWEEP_LIMIT): Promise<number> {
  return await db.$executeRaw`DELETE FROM "LoginFailure" WHERE key IN (SELECT key FROM "LoginFailure" WHERE "expiresAt" < ${iso(at)}::timestamp(3) ORDER BY "expiresAt" LIMIT ${limit} FOR UPDATE SKIP LOCKED)`
}

/**
 * NIST SP 800-63B 3.2.2 (rate limiting) and OWASP ASVS 2.2.1: failures are counted per
 * identifier whether or not an account uses it, in the database that every instance
 * shares. The count is forgotten after a successful login (by the statement that opens its
 * session, `openSession` in session-store.ts), a password reset, or `lockoutSeconds` without
 * failures once its wait is over.
 */
export function createLoginThrottle ({ prisma, policy, keys, now }: LoginThrottleDeps) {
  /** Whether a count's quiet period has passed: the next failure starts it again from one. */
  const isForgotten = (state: FailureState, at: Date): boolean =>
    at.getTime() >= state.lastFailureAt.getTime() + (waitAfter(state.failures, policy) + policy.lockoutSeconds) * 1000
  /** Of two counts, the one whose wait ends later (the larger if neither waits any more). */
  const stricterOf = <T extends FailureState>(a: T, b: T, at: Date): T => {
    const waitEnd = (state: FailureState) => Math.max(state.lastFailureAt.getTime() + waitAfter(state.failures, policy) * 1000, at.getTime())
    return waitEnd(a) !== waitEnd(b) ? (waitEnd(a) > waitEnd(b) ? a : b) : (a.failures >= b.failures ? a : b)
  }

  // The longest any row can matter: the longest wait, then the quiet period.
  const keepSeconds = Math.max(policy.maxSeconds, policy.lockoutSeconds) + policy.lockoutSeconds

  return {
    keys,

    /**
     * Runs a password check of the identifier `key` after the ones already under way here:
     * its backoff is read before the password and its failure recorded after it, so checks
     * at once would all read the same count, and a burst would get past the backoff and the
     * lockout. Per instance: with several, one check per identifier may be under way on each.
     */
    inTurn: oneAtATime(),

    /**
     * Throws RATE_LIMITED with the remaining wait while the identifier must wait; the same
     * answer for an identifier of an account and one of none, decided before the password is.
     */
    assertMayTry (state: FailureState | null): void {
      if (state === null) return
      const wait = waitAfter(state.failures, policy)
      if (wait === 0) return
      const at = now().getTime()
      // A failure stamped ahead (this clock set back since, or another instance's running
      // ahead) counts as made now: it is never a free try (with the stamp ignored, instances
      // whose clocks differ let every other guess through), and the wait it tells is its own,
      // told again until this clock passes the stamp.
      const last = Math.min(state.lastFailureAt.getTime(), at)
      const remaining = (last + wait * 1000 - at) / 1000
      if (remaining > 0) throw rateLimited(remaining)
    },

    /**
     * assertMayTry for identifiers read here rather than by the login's own statement: a
     * second-factor or reauthentication attempt waits exactly as a login by them would.
     */
    async assertMayTryAll (keys: string[]): Promise<void> {
      const states = await prisma.loginFailure.findMany({ where: { key: { in: keys } }, select: { failures: true, lastFailureAt: true } })
      for (const state of states) this.assertMayTry(state)
    },

    /** Counts one more failure, atomically (concurrent failures all count). */
    async recordFailure (key: string): Promise<void> {
      const at = now()
      const expiresAt = new Date(at.getTime() + keepSeconds * 1000)
      const state = await prisma.loginFailure.findUnique({ where: { key }, select: { failures: true, lastFailureAt: true } })
      // A count whose quiet period has passed starts again from one.
      const stale = state !== null && isForgotten(state, at)
      await prisma.loginFailure.upsert({
        where: { key },
        create: { key, failures: 1, lastFailureAt: at, expiresAt },
        update: stale ? { failures: 1, lastFailureAt: at, expiresAt } : { failures: { increment: 1 }, lastFailureAt: at, expiresAt }
      })
      await sweepExpiredFailures(prisma, at)
    },

    /**
     * Moves the failures counted under `from` to `to` (a renamed account's former name to its
     * new one): whoever takes the former name next starts with none, and the account keeps its
     * wait (a rename away and back must not clear it). Where `to` has failures of its own, the
     * count whose wait ends later stays, as it is (the larger count if neither waits); a count
     * already forgotten is none. Each simpler rule is wrong: keeping the larger count
     * let an old one prepared on a free name replace a lock, and merging the two built a lock
     * neither had earned, or brought a forgotten count back.
     */
    async move (from: string, to: string, db: Db): Promise<void> {
      const at = now()
      const moved = await db.loginFailure.findUnique({ where: { key: from } })
      if (moved === null) return
      // deleteMany: a success or a sweep may have taken the row meanwhile (delete would throw).
      await db.loginFailure.deleteMany({ where: { key: from } })
      if (isForgotten(moved, at)) return
      const kept = await db.loginFailure.findUnique({ where: { key: to } })
      if (kept !== null && !isForgotten(kept, at) && stricterOf(kept, moved, at) === kept) return
      const { failures, lastFailureAt, expiresAt } = moved
      await db.loginFailure.upsert({ where: { key: to }, create: { key: to, failures, lastFailureAt, expiresAt }, update: { failures, lastFailureAt, expiresAt } })
    },

    /** Forgets the failures of these identifiers: in a password reset's transaction, or for a correct password refused for an unverified address (a successful login forgets them in `openSession`'s statement). */
    async clear (keys: string[], db: Db = prisma): Promise<void> {
      await db.loginFailure.deleteMany({ where: { key: { in: keys } } })
    }
  }
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>
