// The user's second factors: TOTP enrolment, confirmation and removal, recovery codes, proving either, re-sealing TOTP secrets under a new key, and an admin's removal of every factor.
import type { Db, PrismaClient, Transaction } from '../../db/prisma.js'
import { apiError, mfaNotEnabled, withStatus } from '../../errors.js'
import type { Actor, AuditService } from '../admin/audit.js'
import type { AdminActor } from '../admin/admin-actor.js'
import type { MailOutbox } from '../mail/outbox.js'
import type { SessionService } from '../sessions/sessions.js'
import { newRecoveryCodes } from './recovery-codes.js'
import { matchingStep, newTotpSecret, openSealed, otpauthUri, sealSecret, type SealKeys } from './totp.js'
import { emailOf, provenEmailOf } from '../accounts/email-of.js'
import { lockUser, userById } from '../accounts/user-store.js'
import { assertStillProven, type CheckedPassword } from '../passwords/checked-password.js'
import { deleteAllPasskeys, hasPasskey } from '../passkeys/passkey-store.js'
import type { LoginThrottle } from '../sessions/login-throttle.js'
import { markProven } from '../sessions/session-store.js'
import type { OneTimeTokenService } from '../tokens/one-time-tokens.js'
import { voidUnfinishedChanges } from '../accounts/unfinished-changes.js'
import { assertFactorProvenBeside } from './held-proofs.js'
import { addressAttempt } from './throttled-attempts.js'
import { dropRecoveryCodesWithoutFactor, endRecoveryCodes, hasSecondFactor, replaceRecoveryCodes, secondFactorsOf, spendRecoveryCode, type SecondFactors } from './second-factors.js'

export interface FactorDeps {
  prisma: PrismaClient
  outbox: MailOutbox
  audit: AuditService
  sessions: SessionService
  oneTimeTokens: Pick<OneTimeTokenService, 'revoke'>
  /** The login backoff: a wrong first code counts toward the account's address, as a wrong password at reauthentication does. */
  throttle: LoginThrottle
  /** Seal TOTP secrets at rest (derived from AUTH_SECRET, and from AUTH_SECRET_PREVIOUS while it is set). */
  sealKeys: SealKeys
  /** The name authenticator apps show (MFA_ISSUER). */
  issuer: string
  now: () => Date
  /** Where a secret that no key opens is reported: the operator's problem, not the caller's. */
  reportError: (error: unknown, context: string) => void
}

export interface Enrolment {
  secret: string
  otpauthUri: string
  qrSvg: string
}

/**
 * How long an enrolment waits for its first code. An abandoned one must not stay a target for
 * guessing codes (or be confirmed by whoever holds a session) for ever: a quarter of an hour is
 * ample for scanning a QR code and typing one code. Counted from the start of the latest enrolment.
 */
export const TOTP_ENROLMENT_TTL_SECONDS = 15 * 60

/**
 * Deletes the app set-ups never confirmed and past their time at `at`: none can be confirmed, and
 * each kept a sealed secret until its owner began or cancelled another. How many (a user has
 * one row at most, and few leave one: a statement of its own, not batches).
 */
export const deleteAbandonedTotpSetUps = async (db: Db, at: Date): Promise<number> =>
  (await db.totpFactor.deleteMany({ where: { confirmedAt: null, createdAt: { lt: new Date(at.getTime() - TOTP_ENROLMENT_TTL_SECONDS * 1000) } } })).count

async function confirmedFactor (db: Db, userId: string) {
  const factor = await db.totpFactor.findUnique({ where: { userId }, select: { sealedSecret: true, confirmedAt: true, enrolmentId: true } })
  return factor?.confirmedAt == null ? null : factor
}

/**
 * The factor's secret, or null when no key opens it: AUTH_SECRET was changed without
 * AUTH_SECRET_PREVIOUS. The code is then refused like a wrong one (recovery codes and passkeys
 * still work) and the operator is told; a 500 would tell the caller nothing they can act on.
 */
function secretOf ({ sealKeys, reportError }: FactorDeps, userId: string, sealed: Uint8Array): string | null {
  const opened = openSealed(sealKeys, userId, sealed)
  if (opened === null) reportError(new Error(`the TOTP secret of user ${userId} opens with neither AUTH_SECRET nor AUTH_SECRET_PREVIOUS`), 'opening a TOTP secret')
  return opened?.secret ?? null
}

const matchingStepOf = (secret: string | null, code: string, at: Date) => secret === null ? null : matchingStep(secret, code, at)

/** The enrolment a first code may confirm at `at`: 409 when none is under way (never begun, cancelled or expired) or the factor is set up. */
async function pendingEnrolment (db: Db, userId: string, at: Date) {
  const factor = await db.totpFactor.findUnique({ where: { userId }, select: { sealedSecret: true, confirmedAt: true, createdAt: true, enrolmentId: true } })
  if (factor?.confirmedAt != null) throw apiError('MFA_ALREADY_ENABLED')
  const expired = factor != null && at.getTime() - factor.createdAt.getTime() > TOTP_ENROLMENT_TTL_SECONDS * 1000
  if (factor == null || expired) throw apiError('MFA_ENROLMENT_NOT_STARTED')
  return factor
}

/** Why an enrolment whose code was right is no longer there to confirm: confirmed, or cancelled or replaced meanwhile. */
async function goneEnrolmentError (db: Db, userId: string) {
  return apiError(await confirmedFactor(db, userId) === null ? 'MFA_ENROLMENT_NOT_STARTED' : 'MFA_ALREADY_ENABLED')
}

/**
 * The step of a right first code. A wrong one counts toward the account's login backoff, whose
 * wait applies here too (429), in turn with the logins by the address (see addressAttempt): a
 * session, even a stale stolen one, guesses at an unconfirmed enrolment no faster than a login
 * guesses at the password (NIST SP 800-63B 3.2.2), as a password at reauthentication. Not under
 * the account's second-factor key (see secondFactorAttempt), which counts guesses at the factors
 * that guard its sign-ins: this code is of a new secret, which guards nothing yet and lives 15
 * minutes, typed by the session's holder; counted there, the owner's slips at a set-up would
 * hold the factors already set up in a wait that no password reset lifts.
 */
async function confirmationStep (deps: FactorDeps, actor: Actor, sealedSecret: Uint8Array, code: string, at: Date): Promise<number> {
  const { prisma, throttle, audit } = deps
  const user = await userById(prisma, actor.userId, { email: true, username: true })
  if (user === null) throw apiError('AUTH_SESSION_REVOKED')
  const checked = await addressAttempt(throttle, user, async () => {
    const step = matchingStepOf(secretOf(deps, actor.userId, sealedSecret), code, at)
    return step === null ? { refusal: withStatus('MFA_CODE_INVALID', 400) } : { refusal: null, step }
  })
  if (checked.refusal === null) return checked.step
  await audit.record({ action: 'mfa.code_failed', actorId: actor.userId, subjectId: actor.userId, ip: actor.ip, details: { during: 'totp_confirm' } })
  throw checked.refusal
}

/** Setting up an authenticator app: a secret offered, then confirmed by its first code. */
function totpEnrolment (deps: FactorDeps) {
  const { prisma, outbox, audit, sealKeys, issuer, now } = deps
  return {
    /**
     * A new secret for an unconfirmed factor, replacing an earlier unconfirmed one; a
     * confirmed factor must be removed first (409). Nothing guards logins until confirm,
     * which must come within TOTP_ENROLMENT_TTL_SECONDS. 403 EMAIL_NOT_VERIFIED before the
     * address is proven.
     */
    async enrolTotp (actor: Actor & { sessionId: string }, password: CheckedPassword): Promise<Enrolment> {
      const secret = newTotpSecret()
      const email = await provenEmailOf(prisma, actor.userId)
      const sealedSecret = sealSecret(sealKeys.current, actor.userId, secret)
      // Under the user's row, while the session and the password checked are still theirs: a remedy ends the set-ups under way.
      await prisma.$transaction(async tx => {
        await lockUser(tx, actor.userId)
        await assertStillProven(tx, actor, password, now())
        const { count } = await tx.totpFactor.updateMany({ where: { userId: actor.userId, confirmedAt: null }, data: { sealedSecret, lastUsedStep: null, createdAt: now() } })
        if (count > 0) return
        if (await confirmedFactor(tx, actor.userId) !== null) throw apiError('MFA_ALREADY_ENABLED')
        await tx.totpFactor.create({ data: { userId: actor.userId, sealedSecret, createdAt: now() } })
      })
      await audit.record({ action: 'mfa.totp_enrolment_started', actorId: actor.userId, subjectId: actor.userId, ip: actor.ip })
      const uri = otpauthUri(secret, issuer, email)
      // Loaded here, at the first enrolment: nothing else draws a QR code (docs/benchmarks.md, Memory).
      const { default: QRCode } = await import('qrcode')
      return { secret, otpauthUri: uri, qrSvg: await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 }) }
    },

    /**
     * A first code proves the authenticator holds the secret: the factor guards every later
     * login, ten recovery codes are made (returned once, stored hashed; any earlier set, made
     * with a passkey, dies), this session counts
     * as having proven it, and the owner is told by mail. 400 MFA_CODE_INVALID for a wrong code,
     * which counts toward the account's login backoff (429 while it must wait); 409
     * MFA_ENROLMENT_NOT_STARTED once the enrolment has expired, unchecked.
     */
    async confirmTotp (actor: Actor, sessionId: string, code: string): Promise<string[]> {
      const at = now()
      const factor = await pendingEnrolment(prisma, actor.userId, at)
      const step = await confirmationStep(deps, actor, factor.sealedSecret, code, at)
      const codes = newRecoveryCodes()
      await prisma.$transaction(async tx => {
        // The user's row first, as every writer of a user's rows takes it (see lockUser).
        await lockUser(tx, actor.userId)
        // Confirmed now, in turn with the other changes of the factors, not when the request began.
        const confirmedAt = now()
        await assertFactorProvenBeside(tx, actor.userId, sessionId, confirmedAt)
        // The factor takes effect here, so the address must be proven here (enrolTotp's check spares a wasted scan).
        const to = await provenEmailOf(tx, actor.userId)
        // A session ended since the enrolment began (a password change, a revoke) adds no factor.
        if (!await markProven(tx, actor.userId, sessionId, { totpEnrolmentId: factor.enrolmentId }, confirmedAt)) throw apiError('AUTH_SESSION_REVOKED')
        // As a first factor, a new generation of codes: none proven before counts for it.
        const before = await dropRecoveryCodesWithoutFactor(tx, actor.userId)
        const { count } = await tx.totpFactor.updateMany({ where: { userId: actor.userId, enrolmentId: factor.enrolmentId, confirmedAt: null, sealedSecret: factor.sealedSecret }, data: { confirmedAt, lastUsedStep: step } })
        if (count === 0) throw await goneEnrolmentError(tx, actor.userId)
        await replaceRecoveryCodes(tx, actor.userId, codes, confirmedAt)
        await outbox.queue(tx, before.passkey ? { kind: 'app_added', to, codesReplaced: before.recoveryCodes } : { kind: 'mfa_enabled', to })
        await audit.recordIn(tx, { action: 'mfa.totp_enabled', actorId: actor.userId, subjectId: actor.userId, ip: actor.ip })
      })
      outbox.wake()
      return codes
    },

  }
}

/**
 * Under the user's row, which a remedy takes too: the caller's session must still be live. One
 * ended by a password change or a sign-out everywhere that committed while this request waited
 * changes nothing after it (regression: it replaced the codes, or removed the factor, after it).
 * And beside a factor, one the session proved (see assertFactorProvenBeside: the route's
 * freshness was checked before another session's first factor could land).
 */
async function assertLiveCaller (tx: Transaction, userId: string, sessionId: string, at: Date): Promise<void> {
  await lockUser(tx, userId)
  await assertFactorProvenBeside(tx, userId, sessionId, at)
}

/** The owner's changes to a set-up factor: removing it, or replacing the recovery codes. */
function factorChanges ({ prisma, outbox, audit, now }: FactorDeps) {
  return {
    /**
     * Removes the factor, and the owner is told by mail; the recovery codes go with it unless a
     * passkey is left. Or cancels an enrolment not yet confirmed, without a mail: it never guarded
     * a login. 409 when there is neither.
     */
    async removeTotp (actor: Actor, sessionId: string): Promise<void> {
      const confirmed = await prisma.$transaction(async tx => {
        await assertLiveCaller(tx, actor.userId, sessionId, now())
        const factor = await tx.totpFactor.findUnique({ where: { userId: actor.userId }, select: { confirmedAt: true } })
        if (factor === null) throw mfaNotEnabled('authenticator app')
        await tx.totpFactor.deleteMany({ where: { userId: actor.userId } })
        const confirmed = factor.confirmedAt !== null
        let recoveryCodes: 'kept' | 'ended' | undefined
        if (confirmed) {
          const to = await emailOf(tx, actor.userId)
          recoveryCodes = hasSecondFactor(await dropRecoveryCodesWithoutFactor(tx, actor.userId)) ? 'kept' : 'ended'
          await outbox.queue(tx, recoveryCodes === 'kept' ? { kind: 'app_removed', to } : { kind: 'mfa_disabled', to, byAdmin: false })
        }
        // `recoveryCodes` also tells this release's entries from an older one's (deploy/upgrades).
        await audit.recordIn(tx, { action: 'mfa.totp_removed', actorId: actor.userId, subjectId: actor.userId, ip: actor.ip, details: { confirmed, ...(recoveryCodes === undefined ? {} : { recoveryCodes }) } })
        return confirmed
      })
      if (confirmed) outbox.wake()
    },

    /**
     * A new set of ten; the old set dies at once. Only with a second factor, an app or a passkey
     * (409 otherwise). They stand in for that factor at the login's second step, which a reset
     * keeps: only while the session and the password the route checked are still the user's.
     */
    async regenerateRecoveryCodes (actor: Actor, sessionId: string, password: CheckedPassword): Promise<string[]> {
      const codes = newRecoveryCodes()
      await prisma.$transaction(async tx => {
        await assertLiveCaller(tx, actor.userId, sessionId, now())
        await assertStillProven(tx, { userId: actor.userId, sessionId }, password, now())
        if (!hasSecondFactor(await secondFactorsOf(tx, actor.userId))) throw mfaNotEnabled('second factor')
        await replaceRecoveryCodes(tx, actor.userId, codes, now())
        await outbox.queue(tx, { kind: 'recovery_codes_regenerated', to: await emailOf(tx, actor.userId) })
        await audit.recordIn(tx, { action: 'mfa.recovery_codes_regenerated', actorId: actor.userId, subjectId: actor.userId, ip: actor.ip })
      })
      outbox.wake()
      return codes
    },

  }
}

/** Proving a factor, at login or when reauthenticating. */
function factorProofs (deps: FactorDeps) {
  const { prisma, outbox, now } = deps
  return {
    /** The user's second factors: an app, passkeys, and unused recovery codes. */
    async secondFactors (userId: string, db: Db = prisma): Promise<SecondFactors> {
      return await secondFactorsOf(db, userId)
    },

    /**
     * When `code` is the TOTP code of a step within ±1 of now that is later than the last one
     * accepted, the app's enrolmentId, which the session records; that step becomes the last
     * accepted in the same conditional update, so of two requests with one code exactly one
     * passes (RFC 6238 5.2: no replay). Null for any other code.
     */
    async proveTotp (db: Db, userId: string, code: string): Promise<{ enrolmentId: string } | null> {
      const factor = await confirmedFactor(db, userId)
      if (factor === null) return null
      const step = matchingStepOf(secretOf(deps, userId, factor.sealedSecret), code.replace(/\s+/g, ''), now())
      if (step === null) return null
      const { count } = await db.totpFactor.updateMany({
        where: { userId, enrolmentId: factor.enrolmentId, confirmedAt: { not: null }, OR: [{ lastUsedStep: null }, { lastUsedStep: { lt: step } }] },
        data: { lastUsedStep: step }
      })
      return count === 1 ? { enrolmentId: factor.enrolmentId } : null
    },

    /**
     * When `code` is one of the user's unused recovery codes (spaces, dashes and case ignored;
     * every stored hash compared), the user's secondFactorGeneration, which the session records:
     * the code is used up in the same conditional update, and the owner is told by mail how many
     * are left. Null for any other code. Under the user's row (see lockUser).
     */
    async proveRecoveryCode (db: Db, userId: string, code: string): Promise<{ generation: number } | null> {
      // No factor, no codes: the last factor's removal takes them (dropRecoveryCodesWithoutFactor).
      const spent = await spendRecoveryCode(db, userId, code, now())
      const user = spent === null ? null : await userById(db, userId, { email: true, secondFactorGeneration: true })
      if (spent === null || user === null) return null
      await outbox.queue(db, { kind: 'recovery_code_used', to: user.email, left: spent.unusedBefore - 1 })
      return { generation: user.secondFactorGeneration }
    }
  }
}

export interface ResealOutcome {
  /** Sealed again under the current key. */
  resealed: number
  /** Opened by neither key: left as they are. */
  unreadable: number
  /** False when `signal` stopped the pass before the last batch. */
  complete: boolean
}

/** Replacing AUTH_SECRET: the secrets only the previous key opens are sealed again under the current one. */
function secretRotation ({ prisma, sealKeys }: FactorDeps) {
  return {
    /**
     * One pass over every factor, a batch of rows at a time in user id order. Each row is
     * written only if it is unchanged since it was read (its owner may re-enrol meanwhile),
     * so instances that run the pass at once write each row once.
     */
    async resealStaleSecrets ({ batchSize = 500, signal }: { batchSize?: number, signal?: AbortSignal } = {}): Promise<ResealOutcome> {
      const outcome = { resealed: 0, unreadable: 0, complete: false }
      if (sealKeys.previous === undefined) return { ...outcome, complete: true }
      let after: string | undefined
      while (signal?.aborted !== true) {
        const rows = await prisma.totpFactor.findMany({
          where: after === undefined ? {} : { userId: { gt: after } },
          orderBy: { userId: 'asc' },
          take: batchSize,
          select: { userId: true, sealedSecret: true }
        })
        for (const { userId, sealedSecret } of rows) {
          const opened = openSealed(sealKeys, userId, sealedSecret)
          if (opened === null) outcome.unreadable++
          if (opened?.stale !== true) continue
          const resealed = sealSecret(sealKeys.current, userId, opened.secret)
          const { count } = await prisma.totpFactor.updateMany({ where: { userId, sealedSecret }, data: { sealedSecret: resealed } })
          outcome.resealed += count
        }
        if (rows.length < batchSize) return { ...outcome, complete: true }
        after = rows.at(-1)?.userId
      }
      return outcome
    }
  }
}

/**
 * Ends an authenticator app's set-up under way. By a remedy (accounts/unfinished-changes.ts): it
 * was begun with the password of then. And when a passkey becomes a factor: it was begun while
 * the password alone made a session fresh, and confirmed now it would be a factor set up without
 * proving the passkey (regression: a session holder who knew the password kept a set-up alive
 * until the owner's first passkey, then confirmed it and took the account).
 */
export async function cancelAppSetUp (tx: Transaction, userId: string): Promise<void> {
  await tx.totpFactor.deleteMany({ where: { userId, confirmedAt: null } })
}

/**
 * Deletes the user's TOTP factor (confirmed or not), recovery codes and passkeys: whether
 * there was a factor to delete. An enrolment never confirmed is not one: it guarded nothing,
 * and its removal mails nobody that two-step sign-in is off.
 */
export async function deleteEverySecondFactor (tx: Transaction, userId: string): Promise<boolean> {
  const { count: confirmed } = await tx.totpFactor.deleteMany({ where: { userId, confirmedAt: { not: null } } })
  await tx.totpFactor.deleteMany({ where: { userId } })
  await endRecoveryCodes(tx, userId)
  const passkeys = await deleteAllPasskeys(tx, userId)
  return confirmed > 0 || passkeys > 0
}

/** The user's second factors: set up, changed or removed by the owner, removed by an admin, proven, and sealed again when the root secret changes. */
export function createFactorService (deps: FactorDeps) {
  const { prisma, outbox, audit, sessions, oneTimeTokens, throttle, now } = deps
  return {
    ...totpEnrolment(deps),
    ...factorChanges(deps),
    ...factorProofs(deps),
    ...secretRotation(deps),

    /**
     * An admin removes every second factor of a user (a lost phone and no codes left), ends
     * all their sessions and tells them by mail. Idempotent: a user without one is left alone.
     */
    async removeAllByAdmin (actor: AdminActor, userId: string): Promise<void> {
      const removed = await prisma.$transaction(async tx => {
        await actor.confirm(tx, { target: userId })
        const user = await userById(tx, userId, { email: true })
        if (user === null) throw apiError('NOT_FOUND')
        // A second factor: a confirmed TOTP or a passkey (an enrolment under way is none).
        const removed = await tx.totpFactor.count({ where: { userId, confirmedAt: { not: null } } }) > 0 || await hasPasskey(tx, userId)
        if (removed) {
          // The login challenges before the factors, as a login's second step takes them: never crosswise.
          await voidUnfinishedChanges(tx, oneTimeTokens, userId, now())
          await deleteEverySecondFactor(tx, userId)
          await sessions.revokeAll(userId, 'mfa_removed_by_admin', tx)
          // The owner starts again with no wrong codes held against a factor set up anew.
          await throttle.clear([throttle.keys.secondFactor(userId)], tx)
          await outbox.queue(tx, { kind: 'mfa_disabled', to: user.email, byAdmin: true })
        }
        // In the transaction, as every admin change of a user is audited: both or neither.
        await audit.recordIn(tx, { action: 'mfa.removed_by_admin', actorId: actor.userId, subjectId: userId, ip: actor.ip, details: { removed, ...(removed ? { recoveryCodes: 'ended' } : {}) } })
        return removed
      })
      if (removed) outbox.wake()
    }
  }
}

export type FactorService = ReturnType<typeof createFactorService>
