// A login's two statements: what deciding it needs, then everything a success writes.
import { randomUUID } from 'node:crypto'
import { iso, statement, type Sql } from '../../db/sql.js'
import { isForeignKeyViolation } from '../../db/refusals.js'
import { apiError } from '../../errors.js'
import type { FailureState } from './login-throttle.js'
import type { Device, StartedSession } from './sessions.js'
import { expiryOf, liveSessionSql } from './liveness.js'
import type { SettingsService } from '../admin/settings.js'
import type { RefreshTokenCodec } from '../tokens/refresh-tokens.js'
import { API_USER_COLUMNS, API_USER_FROM, apiUserOfRow, type ApiUser, type ApiUserRow } from '../accounts/api-user.js'

export interface LoginStoreDeps {
  sql: Sql
  codec: RefreshTokenCodec
  settings: SettingsService
  now: () => Date
  maxSessionsPerUser: number
}

/** What deciding a login needs, and nothing that takes another query to read (the profile). */
export interface Credentials {
  id: string
  email: string
  username: string | null
  role: string
  emailVerifiedAt: Date | null
  passwordHash: string
  isActive: boolean
  /** Whether a confirmed second factor guards the account: read in the same statement for every login, known or not. */
  mfaEnabled: boolean
}

/**
 * How a login was proven: the password, and the second factor if the account has one; or,
 * with `passwordless`, a passkey alone (its user verification makes it two factors in one).
 */
export interface LoginProof {
  secondFactor: 'totp' | 'recovery_code' | 'webauthn' | null
  /** Whether a passkey's authenticator verified the user (PIN, biometrics). */
  userVerified?: boolean
  passwordless?: boolean
}

/** RFC 8176 values for a proof (a recovery code is a second factor, but not a one-time-password device; a passkey is `hwk`, with `user` when it verified the user). */
export function amrOf (proof: LoginProof): string[] {
  const passkey = proof.userVerified === true ? ['hwk', 'user'] : ['hwk']
  if (proof.passwordless === true) return [...passkey, 'mfa']
  if (proof.secondFactor === 'totp') return ['pwd', 'otp', 'mfa']
  if (proof.secondFactor === 'recovery_code') return ['pwd', 'mfa']
  if (proof.secondFactor === 'webauthn') return ['pwd', ...passkey, 'mfa']
  return ['pwd']
}

type LookupRow = { [K in keyof Credentials]: Credentials[K] | null } & { failures: number | null, lastFailureAt: Date | null }

// Always exactly one row, with or without failures, with or without an account: the same
// statement and the same work whether the account exists.
const lookupOf = (column: 'email' | 'username') => statement<LookupRow>(`login.lookup_by_${column}`, `
  SELECT f.failures, f."lastFailureAt",
    u.id, u.email, u.username, u.role, u."emailVerifiedAt", u."passwordHash", u."isActive",
    (t."confirmedAt" IS NOT NULL OR EXISTS (SELECT 1 FROM "Passkey" p WHERE p."userId" = u.id)) AS "mfaEnabled"
  FROM (VALUES (1)) AS one
  LEFT JOIN "LoginFailure" f ON f.key = $1
  LEFT JOIN "User" u ON u.${column} = $2
  LEFT JOIN "TotpFactor" t ON t."userId" = u.id`)
const lookups = { email: lookupOf('email'), username: lookupOf('username') }

// One statement, so one round trip and all or nothing: the identifiers' failures are
// forgotten (NIST SP 800-63B 3.2.2), the session opens, the oldest live sessions beyond the
// cap end (the new one is not in this statement's snapshot, hence an offset of cap - 1),
// the audit entry is written, and the user comes back for the answer.
const succeed = statement<ApiUserRow>('login.succeed', `
  WITH cleared AS (
    DELETE FROM "LoginFailure" WHERE key = ANY($1::text[])
  ), evicted AS (
    UPDATE "Session" SET "revokedAt" = $4, "revokedReason" = 'evicted'
    WHERE id IN (
      SELECT s.id FROM "Session" s
      WHERE s."userId" = $2 AND ${liveSessionSql('s', '$4')}
      ORDER BY s."lastUsedAt" DESC, s."createdAt" DESC
      OFFSET $10)
  ), created AS (
    INSERT INTO "Session" (id, "userId", "secretSalt", "userAgent", ip, "createdAt", "lastUsedAt", "idleExpiresAt", "absoluteExpiresAt",
      "authTime", amr, "passwordProvenAt", "totpProvenAt", "recoveryCodeProvenAt", "passkeyProvenAt")
    VALUES ($3, $2, $5, $6, $7, $4, $4, $8, $9, $4, $13::text[], $16, $14, $15, $17)
  ), audited AS (
    INSERT INTO "AuditEvent" (id, "createdAt", action, "actorId", "subjectId", ip, details)
    VALUES ($11, $4, 'login.succeeded', $2, $2, $7, $12)
  )
  SELECT ${API_USER_COLUMNS} FROM ${API_USER_FROM} WHERE u.id = $2`)

export function createLoginStore ({ sql, codec, settings, now, maxSessionsPerUser }: LoginStoreDeps) {
  return {
    /** The failures counted against `throttleKey`, and the account `lookup` names, if any. */
    async lookup (lookup: { email: string } | { username: string }, throttleKey: string): Promise<{ failures: FailureState | null, user: Credentials | null }> {
      const [column, value] = 'email' in lookup ? ['email', lookup.email] as const : ['username', lookup.username] as const
      const { rows: [row] } = await lookups[column](sql, [throttleKey, value])
      if (row === undefined) throw new Error('login lookup returned no row')
      const { failures, lastFailureAt, ...user } = row
      return {
        failures: failures === null || lastFailureAt === null ? null : { failures, lastFailureAt },
        user: user.id === null ? null : user as Credentials
      }
    },

    /**
     * Opens a new session for a proven login: always a new id and a new secret (no session
     * fixation), with the per-user cap applied and the audit entry written alongside.
     */
    async succeed (userId: string, device: Device, throttleKeys: string[], proof: LoginProof): Promise<{ session: StartedSession, user: ApiUser, amr: string[], authTime: Date }> {
      const at = now()
      const amr = amrOf(proof)
      const lifetimes = settings.tokenLifetimes()
      const sessionId = randomUUID()
      const salt = codec.newSalt()
      const idleExpiresAt = new Date(at.getTime() + lifetimes.refreshTokenIdleTtlSeconds * 1000)
      const absoluteExpiresAt = new Date(at.getTime() + lifetimes.sessionAbsoluteTtlSeconds * 1000)
      const { rows: [row] } = await succeed(sql, [
        throttleKeys, userId, sessionId, iso(at), Buffer.from(salt), device.userAgent?.slice(0, 512) ?? null, device.ip,
        iso(idleExpiresAt), iso(absoluteExpiresAt), maxSessionsPerUser - 1, randomUUID(), JSON.stringify({ sessionId, amr }),
        amr, proof.secondFactor === 'totp' ? iso(at) : null, proof.secondFactor === 'recovery_code' ? iso(at) : null,
        proof.passwordless === true ? null : iso(at), proof.secondFactor === 'webauthn' ? iso(at) : null
      ]).catch((error: unknown) => {
        // The account was deleted after its password was checked: as good as unknown.
        if (isForeignKeyViolation(error)) throw apiError('AUTH_INVALID_CREDENTIALS')
        throw error
      })
      if (row === undefined) throw apiError('AUTH_INVALID_CREDENTIALS')
      return {
        session: { sessionId, refreshToken: codec.encode(sessionId, 0, salt), refreshExpiresAt: expiryOf({ idleExpiresAt, absoluteExpiresAt }) },
        user: apiUserOfRow(row),
        amr,
        authTime: at
      }
    }
  }
}

export type LoginStore = ReturnType<typeof createLoginStore>
