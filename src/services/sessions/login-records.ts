// What a login reads and writes, in two statements: what deciding it needs, then everything a success writes (the statements are in the user and session stores).
import { randomUUID } from 'node:crypto'
import type { Sql } from '../../db/sql.js'
import { isForeignKeyViolation, isUniqueViolation } from '../../db/refusals.js'
import { apiError } from '../../errors.js'
import type { FailureState } from './login-throttle.js'
import type { SigningInDevice, StartedSession } from './sessions.js'
import { describeDevice, deviceHashOf } from './devices.js'
import { expiryOf } from './liveness.js'
import { openSession, type NewSession } from './session-store.js'
import type { SettingsService } from '../admin/settings.js'
import type { RefreshTokenCodec } from '../tokens/refresh-tokens.js'
import { apiUserOfRow, type ApiUser } from '../accounts/api-user.js'
import { loginLookup, type Credentials } from '../accounts/user-store.js'

export interface LoginRecordsDeps {
  sql: Sql
  codec: RefreshTokenCodec
  settings: SettingsService
  now: () => Date
  maxSessionsPerUser: number
  /** Ended sessions older than this are deleted when their user next logs in. */
  sessionRetentionDays: number
  /**
   * SIGN_IN_NOTICES: whether the owner is mailed of a sign-in from a device the account does not
   * know, or after `afterFailures` failed attempts (the login backoff's free tries) (docs/security.md,
   * "Sign-in notices").
   */
  notices: { enabled: boolean, afterFailures: number }
  /** Tells the mail deliverer a notice is waiting (after the commit). */
  wakeMail: () => void
}

/**
 * How a login was proven: the password, and the second factor if the account has one; or,
 * with `passwordless`, a passkey alone (its user verification makes it two factors in one).
 */
export interface LoginProof {
  secondFactor: 'totp' | 'recovery_code' | 'webauthn' | null
  /** Whether a passkey's authenticator verified the user (PIN, biometrics). */
  userVerified?: boolean
  /** The passkey proven, with `secondFactor` 'webauthn': the session remembers which (see assertAdminSession). */
  passkeyId?: string
  /** The authenticator app proven (its enrolmentId), with `secondFactor` 'totp' (see assertAdminSession). */
  totpEnrolmentId?: string
  /**
   * The id the session takes, reserved by the login's challenge when it was met: a second step
   * sent again after a 503 opens that session or, once it has opened, none.
   */
  sessionId?: string
  /** The user's secondFactorGeneration the recovery code was proven under, with `secondFactor` 'recovery_code' (see assertAdminSession). */
  recoveryCodeGeneration?: number
  passwordless?: boolean
  /**
   * The password hash the login was proven under (the one checked, the one a challenge was
   * met under, or, for a passkey alone, the one the account had when the passkey was
   * checked): a password changed or reset meanwhile wins over the login (see session-store.ts),
   * as it suspends the passkeys' sign-in alone.
   */
  passwordHash?: string
  /**
   * The user's sign-out count read with that hash (User.signOutGeneration): a remedy that
   * ended every session meanwhile (logout-all, an admin's sign-out or removal of the factors)
   * wins over the login too, which would otherwise open a session after it.
   */
  signOutGeneration?: number
}

/** RFC 8176 values for a proof (a recovery code is a second factor, but not a one-time-password device; a passkey is `hwk`, with `user` when it verified the user). */
function amrOf (proof: LoginProof): string[] {
  const passkey = proof.userVerified === true ? ['hwk', 'user'] : ['hwk']
  if (proof.passwordless === true) return [...passkey, 'mfa']
  if (proof.secondFactor === 'totp') return ['pwd', 'otp', 'mfa']
  if (proof.secondFactor === 'recovery_code') return ['pwd', 'mfa']
  if (proof.secondFactor === 'webauthn') return ['pwd', ...passkey, 'mfa']
  return ['pwd']
}

/** What the session records as proven by the login (see NewSession). */
function provenBy (proof: LoginProof): NewSession['proven'] {
  return {
    password: proof.passwordless !== true,
    totpEnrolmentId: proof.secondFactor === 'totp' ? proof.totpEnrolmentId ?? null : null,
    recoveryCodeGeneration: proof.secondFactor === 'recovery_code' ? proof.recoveryCodeGeneration ?? null : null,
    passkeyId: proof.secondFactor === 'webauthn' ? proof.passkeyId ?? null : null
  }
}

export function createLoginRecords ({ sql, codec, settings, now, maxSessionsPerUser, sessionRetentionDays, notices, wakeMail }: LoginRecordsDeps) {
  return {
    /** The failures counted against `throttleKey`, and the account `lookup` names, if any. */
    async lookup (lookup: { email: string } | { username: string }, throttleKey: string): Promise<{ failures: FailureState | null, user: Credentials | null }> {
      const [column, value] = 'email' in lookup ? ['email', lookup.email] as const : ['username', lookup.username] as const
      const { failures, lastFailureAt, ...user } = await loginLookup(sql, column, value, throttleKey)
      return {
        failures: failures === null || lastFailureAt === null ? null : { failures, lastFailureAt },
        user: user.id === null ? null : user as Credentials
      }
    },

    /**
     * Opens a new session for a proven login: always a new id (the challenge's reservation, or
     * drawn now) and a new secret (no session fixation), with the per-user cap applied and the
     * audit entry written alongside, and the id of its first access token, the fresh one. Null
     * when the account was deleted, deactivated or given another password after the login read
     * it: the login lost that race and opens nothing.
     * 401 MFA_CHALLENGE_EXPIRED when the challenge's session has opened meanwhile (two attempts
     * sent again at once).
     */
    async openSessionFor (userId: string, device: SigningInDevice, throttleKeys: string[], proof: LoginProof): Promise<{ session: StartedSession, user: ApiUser, amr: string[], authTime: Date, freshTokenId: string } | null> {
      const at = now()
      const freshTokenId = randomUUID()
      const amr = amrOf(proof)
      const lifetimes = settings.tokenLifetimes()
      const sessionId = proof.sessionId ?? randomUUID()
      const salt = codec.newSalt()
      const idleExpiresAt = new Date(at.getTime() + lifetimes.refreshTokenIdleTtlSeconds * 1000)
      const absoluteExpiresAt = new Date(at.getTime() + lifetimes.sessionAbsoluteTtlSeconds * 1000)
      const row = await openSession(sql, {
        id: sessionId,
        userId,
        salt,
        userAgent: device.userAgent?.slice(0, 512) ?? null,
        ip: device.ip,
        at,
        idleExpiresAt,
        absoluteExpiresAt,
        amr,
        freshTokenId,
        proven: provenBy(proof),
        keepOthers: maxSessionsPerUser - 1,
        deleteEndedBefore: new Date(at.getTime() - sessionRetentionDays * 86_400_000),
        passwordHash: proof.passwordHash ?? null,
        signOutGeneration: proof.signOutGeneration ?? null,
        throttleKeys,
        auditId: randomUUID(),
        deviceHash: deviceHashOf(userId, device.token),
        deviceDescription: describeDevice(device.userAgent),
        notices,
        noticeId: randomUUID()
      }).catch((error: unknown) => {
        // Deleted between the statement's snapshot and its insert.
        if (isForeignKeyViolation(error)) return null
        if (isUniqueViolation(error)) throw apiError('MFA_CHALLENGE_EXPIRED')
        throw error
      })
      if (row === null) return null
      if (row.noticed) wakeMail()
      return {
        session: { sessionId, refreshToken: codec.encode(sessionId, 0, salt), refreshExpiresAt: expiryOf({ idleExpiresAt, absoluteExpiresAt }) },
        user: apiUserOfRow(row),
        amr,
        authTime: at,
        freshTokenId
      }
    }
  }
}

export type LoginRecords = ReturnType<typeof createLoginRecords>
