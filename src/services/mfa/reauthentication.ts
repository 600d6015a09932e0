// Fresh authentication: sensitive changes need a proof made on this session recently; POST /auth/reauthenticate makes one.
import type { PrismaClient } from '../../db/prisma.js'
import { apiError, reauthenticationRequired, withStatus } from '../../errors.js'
import type { AuditService } from '../admin/audit.js'
import { accountThrottleKeys, type LoginThrottle } from '../sessions/login-throttle.js'
import type { MailOutbox } from '../mail/outbox.js'
import type { PasswordService } from '../passwords/passwords.js'
import { liveSessionWhere } from '../sessions/liveness.js'
import type { SessionService } from '../sessions/sessions.js'
import type { FactorService } from './factors.js'

/** What reauthentication accepts; webauthn joins this list when passkeys do. */
export type ReauthenticationMethod = 'password' | 'totp' | 'recovery_code'

export type ReauthenticationProof = { password: string } | { code: string } | { recoveryCode: string }

export interface ReauthenticationDeps {
  prisma: PrismaClient
  passwords: PasswordService
  factors: FactorService
  sessions: SessionService
  throttle: LoginThrottle
  audit: AuditService
  outbox: MailOutbox
  now: () => Date
  /** REAUTH_MAX_AGE_SECONDS. */
  maxAgeSeconds: number
  /** REQUIRE_MFA_FOR_ADMINS. */
  requireMfaForAdmins: boolean
}

/** The methods an account can reauthenticate with: its password, and its second factor when it has one. */
export function methodsFor (mfaEnabled: boolean): ReauthenticationMethod[] {
  return mfaEnabled ? ['password', 'totp', 'recovery_code'] : ['password']
}

export function createReauthenticationService ({ prisma, passwords, factors, sessions, throttle, audit, outbox, now, maxAgeSeconds, requireMfaForAdmins }: ReauthenticationDeps) {
  /** The proof times of the caller's session, only while it is live. */
  async function provenTimes (userId: string, sessionId: string) {
    const session = await prisma.session.findFirst({
      where: { id: sessionId, userId, ...liveSessionWhere(now()) },
      select: { passwordProvenAt: true, totpProvenAt: true, recoveryCodeProvenAt: true }
    })
    if (session === null) throw apiError('AUTH_SESSION_REVOKED')
    return session
  }

  return {
    /**
     * OWASP ASVS 3.7.1 (re-authentication before sensitive changes): a stolen session, or a
     * device left signed in, cannot change the credentials or remove the account by itself.
     * Fresh means a password or factor proven on this session within REAUTH_MAX_AGE_SECONDS,
     * at login or by POST /auth/reauthenticate; else 403 with the methods to use.
     */
    async assertFresh (userId: string, sessionId: string): Promise<void> {
      const times = await provenTimes(userId, sessionId)
      const latest = Math.max(...[times.passwordProvenAt, times.totpProvenAt, times.recoveryCodeProvenAt].map(time => time?.getTime() ?? 0))
      if (now().getTime() - latest <= maxAgeSeconds * 1000) return
      throw reauthenticationRequired(methodsFor(await factors.isEnabled(userId)))
    },

    /**
     * With REQUIRE_MFA_FOR_ADMINS, the admin API serves only sessions that proved a second
     * factor (at login, at enrolment, or by reauthentication): an admin without one must enrol.
     */
    async assertAdminSecondFactor (userId: string, sessionId: string): Promise<void> {
      if (!requireMfaForAdmins) return
      const times = await provenTimes(userId, sessionId)
      if (times.totpProvenAt === null && times.recoveryCodeProvenAt === null) throw apiError('MFA_ENROLMENT_REQUIRED')
    },

    /**
     * Proves the password or a factor again on this session, without a new one. Failures count
     * toward the account's login backoff and its wait applies (429), so a stolen session
     * cannot be used to guess the password.
     */
    async reauthenticate (userId: string, sessionId: string, proof: ReauthenticationProof, ip: string): Promise<void> {
      await provenTimes(userId, sessionId)
      const user = await prisma.user.findUnique({ where: { id: userId }, select: { email: true, username: true, passwordHash: true } })
      if (user === null) throw apiError('AUTH_SESSION_REVOKED')
      const keys = accountThrottleKeys(user)
      await throttle.assertMayTryAll(keys)
      const method: ReauthenticationMethod = 'password' in proof ? 'password' : 'code' in proof ? 'totp' : 'recovery_code'
      if (method !== 'password' && !await factors.isEnabled(userId)) throw apiError('MFA_NOT_ENABLED')
      const proven = 'password' in proof
        ? await passwords.verify(user.passwordHash, proof.password)
        : 'code' in proof ? await factors.proveTotp(prisma, userId, proof.code) : await factors.proveRecoveryCode(prisma, userId, proof.recoveryCode)
      if (!proven) {
        await throttle.recordFailure(keys[0] as string)
        await audit.record({ action: method === 'password' ? 'reauthentication.failed' : 'mfa.code_failed', actorId: userId, subjectId: userId, ip, details: { during: 'reauthentication', method } })
        throw method === 'password' ? apiError('INVALID_CURRENT_PASSWORD') : withStatus('MFA_CODE_INVALID', 403)
      }
      const at = now()
      const field = method === 'password' ? 'passwordProvenAt' : method === 'totp' ? 'totpProvenAt' : 'recoveryCodeProvenAt'
      await prisma.session.updateMany({ where: { id: sessionId, userId }, data: { [field]: at } })
      if (method === 'recovery_code') {
        outbox.wake()
        await audit.record({ action: 'mfa.recovery_code_used', actorId: userId, subjectId: userId, ip, details: { during: 'reauthentication' } })
      }
      await audit.record({ action: 'reauthentication.succeeded', actorId: userId, subjectId: userId, ip, details: { method } })
    }
  }
}

export type ReauthenticationService = ReturnType<typeof createReauthenticationService>
