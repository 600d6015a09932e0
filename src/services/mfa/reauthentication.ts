// Fresh authentication: sensitive changes need a proof made on this session recently; POST /auth/reauthenticate makes one.
import { randomUUID } from 'node:crypto'
import type { Db, PrismaClient, Transaction } from '../../db/prisma.js'
import { apiError, mfaNotEnabled, reauthenticationRequired, withStatus } from '../../errors.js'
import type { AuditService } from '../admin/audit.js'
import type { LoginThrottle } from '../sessions/login-throttle.js'
import type { MailOutbox } from '../mail/outbox.js'
import type { PasswordService } from '../passwords/passwords.js'
import { markReauthenticated, type Proof, type ProofMethod } from '../sessions/session-store.js'
import { heldProofsOf, provedFactorSince, reauthenticationMethods, type HeldProofs } from './held-proofs.js'
import { expiryOf } from '../sessions/liveness.js'
import type { SettingsService } from '../admin/settings.js'
import type { AccessTokenIssuer, SignedAccessToken } from '../tokens/access-tokens.js'
import { lockUser, userById } from '../accounts/user-store.js'
import { isAdministrative } from '../accounts/roles.js'
import type { SessionService } from '../sessions/sessions.js'
import type { AssertionVerifier } from '../passkeys/assertions.js'
import type { PasskeyService } from '../passkeys/passkeys.js'
import type { FactorService } from './factors.js'
import { addressAttempt, secondFactorAttempt } from './throttled-attempts.js'
import { hasSecondFactor, type SecondFactors } from './second-factors.js'
import type { AuthenticationResponseJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server'

/** What reauthentication accepts. */
export type ReauthenticationMethod = ProofMethod

export type ReauthenticationProof = { password: string } | { code: string } | { recoveryCode: string } | { webauthn: AuthenticationResponseJSON }

export interface ReauthenticationDeps {
  prisma: PrismaClient
  passwords: PasswordService
  factors: FactorService
  passkeys: PasskeyService
  assertions: AssertionVerifier
  sessions: SessionService
  throttle: LoginThrottle
  audit: AuditService
  outbox: MailOutbox
  settings: Pick<SettingsService, 'tokenLifetimes'>
  issueAccessToken: AccessTokenIssuer
  now: () => Date
  /** REAUTH_MAX_AGE_SECONDS. */
  maxAgeSeconds: number
  /** REQUIRE_MFA_FOR_ADMINS. */
  requireMfaForAdmins: boolean
  /** REQUIRE_EMAIL_VERIFICATION: no new access token for an unverified user, as no refresh. */
  requireVerifiedEmail: boolean
}

/** The method a proof uses: its session records when that method was last proven. */
function methodOf (proof: ReauthenticationProof): ReauthenticationMethod {
  return 'password' in proof ? 'password' : 'code' in proof ? 'totp' : 'recoveryCode' in proof ? 'recovery_code' : 'webauthn'
}

/** Whether the account has the factor a proof by `method` needs: a recovery code needs any factor (a used one is then a wrong code). */
function mayProveWith (method: ReauthenticationMethod, factors: SecondFactors): boolean {
  if (method === 'password') return true
  if (method === 'totp') return factors.totp
  if (method === 'webauthn') return factors.passkey
  return hasSecondFactor(factors)
}

/** The caller's session's proofs (see heldProofsOf), only while it is live (else AUTH_SESSION_REVOKED). */
async function proofsOf ({ prisma, now }: ReauthenticationDeps, userId: string, sessionId: string, db: Db = prisma): Promise<HeldProofs> {
  const proofs = await heldProofsOf(db, userId, sessionId, now())
  if (proofs === null) throw apiError('AUTH_SESSION_REVOKED')
  return proofs
}

/** A session's caller, with the id (`jti`) and the auth_time of the access token it presented (auth_time is absent only from tokens older than second factors). */
export interface FreshnessCaller { userId: string, sessionId: string, tokenId: string, authTime: number | undefined }

/** The session as reauthentication leaves it: what its new access token says. */
type Reauthenticated = NonNullable<Awaited<ReturnType<typeof markReauthenticated>>>

/**
 * The proof checked and, when it holds, recorded on the session (AUTH_SESSION_REVOKED once the
 * session has ended): a code or a passkey in one transaction with what it uses up (the code,
 * the time step, the passkey's counter), the recovery code's notice and its audit entry, so a
 * 503 halfway spends nothing and a retry is safe. Else the error to answer (403 for a wrong
 * password, code or passkey). The password is checked outside any transaction: its hash takes
 * a worker thread, not a connection. The user's row first, as every writer of a user's rows
 * takes it (see lockUser): a deletion's cascade, a password change and a removal of the factors
 * reach the session and the factor in other orders.
 */
async function proveAndRecord (deps: ReauthenticationDeps, userId: string, sessionId: string, proof: ReauthenticationProof, passwordHash: string, ip: string, freshTokenId: string): Promise<{ refusal: Error } | { refusal: null, session: Reauthenticated }> {
  const { prisma, passwords, factors, assertions, audit, now } = deps
  // The proof and its audit entry commit together.
  const record = async (tx: Transaction, proven: Proof) => {
    const session = await markReauthenticated(tx, userId, sessionId, proven, now(), freshTokenId)
    if (session === null) throw apiError('AUTH_SESSION_REVOKED')
    await audit.recordIn(tx, { action: 'reauthentication.succeeded', actorId: userId, subjectId: userId, ip, details: { method: methodOf(proof) } })
    return { refusal: null, session }
  }
  if ('password' in proof) {
    if (!await passwords.verify(passwordHash, proof.password)) return { refusal: apiError('INVALID_CURRENT_PASSWORD') }
    return await prisma.$transaction(async tx => await record(tx, 'password'))
  }
  if ('webauthn' in proof) {
    const request = { response: proof.webauthn, purpose: 'reauthentication' as const, bindingId: sessionId, userId, requireUserVerification: false, ip }
    const { outcome, checked } = await prisma.$transaction(async tx => {
      await lockUser(tx, userId)
      const outcome = await assertions.check(tx, request)
      return { outcome, checked: outcome.ok ? await record(tx, { passkeyId: outcome.passkeyId }) : { refusal: withStatus(outcome.code, 403) } }
    })
    await assertions.report(request, outcome)
    return checked
  }
  return await prisma.$transaction(async tx => {
    await lockUser(tx, userId)
    if ('code' in proof) {
      const app = await factors.proveTotp(tx, userId, proof.code)
      return app === null ? { refusal: withStatus('MFA_CODE_INVALID', 403) } : await record(tx, { totpEnrolmentId: app.enrolmentId })
    }
    const proven = await factors.proveRecoveryCode(tx, userId, proof.recoveryCode)
    if (proven === null) return { refusal: withStatus('MFA_CODE_INVALID', 403) }
    await audit.recordIn(tx, { action: 'mfa.recovery_code_used', actorId: userId, subjectId: userId, ip, details: { during: 'reauthentication' } })
    return await record(tx, { recoveryCodeGeneration: proven.generation })
  })
}

export function createReauthenticationService (deps: ReauthenticationDeps) {
  const { prisma, factors, passkeys, throttle, audit, outbox, settings, issueAccessToken, now, maxAgeSeconds, requireMfaForAdmins, requireVerifiedEmail } = deps
  return {
    /**
     * OWASP ASVS 3.7.1 (re-authentication before sensitive changes): a stolen session, or a
     * device left signed in, cannot change the credentials or remove the account by itself.
     * Fresh means the session's user authenticated (logged in, or proved a password or factor by
     * POST /auth/reauthenticate) within REAUTH_MAX_AGE_SECONDS, and the access token is the one
     * that authentication answered (ASVS 7.2.4), recorded on the session by its `jti`. A copy of
     * the session's token taken before a reauthentication stays as stale as it was (regression:
     * the owner's reauthentication made every copy of the session's tokens fresh), and so does
     * every token a refresh mints (regression: whoever held a copy of the refresh token refreshed
     * after the owner's reauthentication and had a fresh token to change the address with). Its
     * auth_time must be the session's too: a reauthentication by an older release moves that and
     * leaves the id, which must not make the login's token, or a copy of it, fresh again.
     * Else 403 with the methods.
     */
    async assertFresh ({ userId, sessionId, tokenId, authTime }: FreshnessCaller, db: Db = prisma): Promise<void> {
      const proofs = await proofsOf(deps, userId, sessionId, db)
      const answeredByIt = tokenId === proofs.freshTokenId && authTime === Math.floor(proofs.authTime.getTime() / 1000)
      // An authentication stamped ahead of this clock (set back since, or another instance's
      // running ahead) is as fresh as one as far behind (regression: fresh for the step's length).
      const recent = Math.abs(now().getTime() - proofs.authTime.getTime()) <= maxAgeSeconds * 1000
      // Beside a factor, only an authentication that proved one the user still has (see reauthenticationMethods).
      if (answeredByIt && recent && (!proofs.hasFactor || provedFactorSince(proofs))) return
      throw reauthenticationRequired(reauthenticationMethods(await factors.secondFactors(userId, db)))
    },

    /**
     * The caller's current role, read with their session, which must be live (else
     * AUTH_SESSION_REVOKED). With REQUIRE_MFA_FOR_ADMINS, the admin API serves only admin
     * sessions that proved a second factor (at login, at enrolment, or by reauthentication)
     * that the admin still has: an admin without one, or who removed it, must enrol. Other
     * roles are left to the permission guards.
     */
    async assertAdminSession (userId: string, sessionId: string, db: Db = prisma): Promise<string> {
      const proofs = await proofsOf(deps, userId, sessionId, db)
      // Any proof of a factor the admin still has, made whenever on this session: a session that
      // proved an app or a passkey removed since does not get the admin API back when another is
      // set up (regression: with a clock set back, a proof of the removed app read as made after
      // the new one's set-up), nor one whose recovery code stood for factors all gone since.
      const proven = proofs.totp !== null || proofs.passkey !== null || proofs.recoveryCode !== null
      if (requireMfaForAdmins && isAdministrative(proofs.role) && !proven) throw apiError('MFA_ENROLMENT_REQUIRED')
      return proofs.role
    },

    /** Passkey options for reauthenticating: the caller's passkeys, a challenge bound to this session. 409 without a passkey. */
    async webauthnOptions (userId: string, sessionId: string): Promise<PublicKeyCredentialRequestOptionsJSON> {
      await proofsOf(deps, userId, sessionId)
      if (!await passkeys.has(userId)) throw mfaNotEnabled('passkey')
      return passkeys.reauthenticationOptions(userId, sessionId)
    },

    /**
     * Proves the password or a factor again on this session, without a new one, and answers a
     * new access token, the one that counts as fresh (see assertFresh); the refresh token stays,
     * and the tokens its refreshes mint do not count as fresh.
     * Failures count toward the account's login backoff and its wait applies (429), so a stolen
     * session cannot be used to guess the password; a wrong proof of a factor also counts, and
     * takes its turn, as at a login's second step, so neither is it a second way to guess codes.
     */
    async reauthenticate (userId: string, sessionId: string, proof: ReauthenticationProof, ip: string): Promise<SignedAccessToken & { sessionExpiresAt: Date }> {
      await proofsOf(deps, userId, sessionId)
      const user = await userById(prisma, userId, { email: true, username: true, passwordHash: true, emailVerifiedAt: true })
      if (user === null) throw apiError('AUTH_SESSION_REVOKED')
      // A session opened before REQUIRE_EMAIL_VERIFICATION: it can no longer refresh, nor get tokens here.
      if (requireVerifiedEmail && user.emailVerifiedAt === null) throw apiError('EMAIL_NOT_VERIFIED')
      const keys = throttle.keys.account(user)
      const method = methodOf(proof)
      const freshTokenId = randomUUID()
      const attempt = async () => {
        const owned = await factors.secondFactors(userId)
        // The password beside a factor proves too little (403, with the methods that do).
        if (method === 'password' && hasSecondFactor(owned)) throw reauthenticationRequired(reauthenticationMethods(owned))
        if (!mayProveWith(method, owned)) throw mfaNotEnabled(method === 'totp' ? 'authenticator app' : method === 'webauthn' ? 'passkey' : 'second factor')
        return await proveAndRecord(deps, userId, sessionId, proof, user.passwordHash, ip, freshTokenId)
      }
      // A password takes its turn and counts as a login by the address does (see addressAttempt);
      // a factor's proof as a second step's does, the address standing for the identifier (see
      // secondFactorAttempt). A wrong password never counts under the account's second-factor
      // key, which counts guesses at the factors: it is checked here only for an account without
      // one (beside a factor it is refused unchecked, above).
      const proven = method === 'password'
        ? await addressAttempt(throttle, user, attempt)
        : await secondFactorAttempt(throttle, keys[0] as string, { id: userId, email: user.email, username: user.username }, method, attempt)
      if (proven.refusal !== null) {
        await audit.record({ action: method === 'password' ? 'reauthentication.failed' : 'mfa.code_failed', actorId: userId, subjectId: userId, ip, details: { during: 'reauthentication', method } })
        throw proven.refusal
      }
      const { session } = proven
      if (method === 'recovery_code') outbox.wake()
      const grant = { userId, sessionId, role: session.user.role, emailVerified: session.user.emailVerifiedAt !== null, amr: session.amr, authTime: session.authTime }
      return { ...issueAccessToken(grant, settings.tokenLifetimes().accessTokenTtlSeconds, freshTokenId), sessionExpiresAt: expiryOf(session) }
    }
  }
}

export type ReauthenticationService = ReturnType<typeof createReauthenticationService>
