// Logging in: credentials checked at constant cost, then a new session and its tokens.
import type { PrismaClient } from '../../db/prisma.js'
import { apiError } from '../../errors.js'
import type { AuditService } from '../admin/audit.js'
import type { EmailVerificationService, MailAdmission } from '../accounts/email-verification.js'
import type { LoginProof, LoginRecords } from './login-records.js'
import type { ChallengeService, IssuedChallenge, SecondFactorProof } from '../mfa/challenges.js'
import type { AssertionVerifier } from '../passkeys/assertions.js'
import type { AuthenticationResponseJSON } from '@simplewebauthn/server'
import type { LoginThrottle } from './login-throttle.js'
import type { AuthMetrics } from '../metrics.js'
import type { PasswordService } from '../passwords/passwords.js'
import type { Device, SigningInDevice } from './sessions.js'
import type { SettingsService } from '../admin/settings.js'
import type { AccessTokenIssuer } from '../tokens/access-tokens.js'
import type { ApiUser } from '../accounts/api-user.js'
import { canonical } from '../accounts/canonical.js'
import { replacePasswordHash, userById } from '../accounts/user-store.js'

export type LoginIdentifier = { identifier: string } | { email: string } | { username: string }

export interface IssuedTokens {
  /** The session the tokens belong to: the access token's `sid`. */
  sessionId: string
  accessToken: string
  refreshToken: string
  /** Access token lifetime in seconds. */
  expiresIn: number
  refreshExpiresAt: Date
}

/** A completed login: its first tokens, the user, and the device token the device keeps. */
export interface SignedIn extends IssuedTokens {
  user: ApiUser
  deviceToken: string
}

/** A proven password for an account with a second factor: no session until the challenge is met. */
export interface SecondFactorRequired extends IssuedChallenge {
  mfaRequired: true
}

export type LoginOutcome = SignedIn | SecondFactorRequired

export function isSecondFactorRequired (outcome: LoginOutcome): outcome is SecondFactorRequired {
  return 'mfaRequired' in outcome
}

export interface LoginDeps {
  prisma: PrismaClient
  passwords: PasswordService
  records: LoginRecords
  settings: SettingsService
  audit: AuditService
  issueAccessToken: AccessTokenIssuer
  emails: EmailVerificationService
  throttle: LoginThrottle
  challenges: ChallengeService
  assertions: AssertionVerifier
  /** REQUIRE_EMAIL_VERIFICATION: unverified users may not log in. */
  requireVerifiedEmail: boolean
  metrics: AuthMetrics
}

/** A deletion, deactivation or password change committed while this login was proven won: 401, audited. */
async function refuseChangedAccount ({ audit, metrics }: Pick<LoginDeps, 'audit' | 'metrics'>, userId: string, device: Device): Promise<never> {
  await audit.record({ action: 'login.failed', subjectId: userId, ip: device.ip, details: { reason: 'account_changed' } })
  metrics.login('invalid_credentials')
  throw apiError('AUTH_INVALID_CREDENTIALS')
}

/**
 * Opens the session of a proven login (see login-records.ts) and issues its first tokens; the
 * role and the address's state come from the statement that opens it, as they are then.
 */
async function signIn ({ records, settings, issueAccessToken, audit, metrics }: LoginDeps, user: { id: string }, device: SigningInDevice, throttleKeys: string[], proof: LoginProof): Promise<SignedIn> {
  const opened = await records.openSessionFor(user.id, device, throttleKeys, proof)
  if (opened === null) return await refuseChangedAccount({ audit, metrics }, user.id, device)
  const { session, user: visible, amr, authTime, freshTokenId } = opened
  const grant = { userId: user.id, sessionId: session.sessionId, role: visible.role, emailVerified: visible.emailVerified, amr, authTime }
  const access = issueAccessToken(grant, settings.tokenLifetimes().accessTokenTtlSeconds, freshTokenId)
  metrics.login('success')
  return {
    user: visible,
    sessionId: session.sessionId,
    accessToken: access.token,
    expiresIn: access.expiresIn,
    refreshToken: session.refreshToken,
    refreshExpiresAt: session.refreshExpiresAt,
    deviceToken: device.token
  }
}

/**
 * The hash the user has once this login has stored a stronger one over the hash just verified,
 * if the parameters grew. A password changed meanwhile is never reverted: when the hash moved
 * under the login, the password is checked against the new one, which is another login's
 * stronger hash of the same password or else a new password's (the login then fails where the
 * session would open).
 */
async function settledHash ({ prisma, passwords }: LoginDeps, user: { id: string, passwordHash: string }, password: string): Promise<string> {
  if (!passwords.needsRehash(user.passwordHash)) return user.passwordHash
  const stronger = await passwords.hash(password)
  if (await replacePasswordHash(prisma, user.id, user.passwordHash, stronger)) return stronger
  const now = await userById(prisma, user.id, { passwordHash: true })
  return now !== null && await passwords.verify(now.passwordHash, password) ? now.passwordHash : user.passwordHash
}

/** REQUIRE_EMAIL_VERIFICATION: a proven but unverified user gets 403, no session, and a fresh link unless a recent one still works. */
async function refuseUnverified ({ emails, metrics }: LoginDeps, user: { id: string, email: string }, admitReminder: MailAdmission): Promise<never> {
  await emails.remindUnverified(user.id, user.email, admitReminder)
  metrics.login('email_not_verified')
  throw apiError('EMAIL_NOT_VERIFIED')
}

/** A login refused for its credentials: counted against the identifier, audited, and answered like every other. */
async function refuseCredentials ({ throttle, audit, metrics }: LoginDeps, who: LoginIdentifier, key: string, device: Device, user: { id: string, isActive: boolean } | null): Promise<never> {
  const reason = user === null ? 'unknown_account' : user.isActive ? 'wrong_password' : 'inactive'
  await throttle.recordFailure(key)
  await audit.record({ action: 'login.failed', subjectId: user?.id ?? null, ip: device.ip, details: { reason, ...(user === null ? triedIdentifier(who) : {}) } })
  metrics.login('invalid_credentials')
  throw apiError('AUTH_INVALID_CREDENTIALS')
}

/** One login by password, its identifier's only check under way here (LoginThrottle.inTurn). */
async function passwordAttempt (deps: LoginDeps, who: LoginIdentifier, key: string, password: string, device: SigningInDevice, admitReminder: MailAdmission): Promise<LoginOutcome> {
  const { passwords, records, throttle, challenges, requireVerifiedEmail, metrics } = deps
  // One query whether or not the account exists: the profile is read only after success,
  // so the database work before the answer does not tell accounts apart either.
  const { failures, user } = await records.lookup(lookupOf(who), key)
  throttle.assertMayTry(failures)
  // A deactivated account's password is never checked: its hash may predate a change of the
  // argon2 parameters, and would then cost another time than the decoy's (the account would
  // show, for good: it never logs in again to be rehashed).
  const valid = user === null || !user.isActive
    ? await passwords.verifyDecoy(password)
    : await passwords.verify(user.passwordHash, password)
  if (user === null || !valid || !user.isActive) return refuseCredentials(deps, who, key, device, user)
  // NIST SP 800-63B 3.2.2: after a successful authentication, earlier failures no longer count
  // (the second step's too: a sign-in without one is complete).
  const throttleKeys = [key, ...throttle.keys.account(user), throttle.keys.secondFactor(user.id)]
  if (requireVerifiedEmail && user.emailVerifiedAt === null) {
    await throttle.clear(throttleKeys)
    return refuseUnverified(deps, user, admitReminder)
  }

  const passwordHash = await settledHash(deps, user, password)
  if (user.mfaEnabled) {
    // Only now, with the password proven, may the answer show that a factor is
    // set. Earlier failures are not forgotten yet: the second step must earn that too.
    const challenge = await challenges.issue(user.id, { passwordHash, signOutGeneration: user.signOutGeneration }, key, device.ip)
    if (challenge === null) return await refuseChangedAccount(deps, user.id, device)
    metrics.login('mfa_required')
    return { mfaRequired: true, ...challenge }
  }
  return signIn(deps, user, device, throttleKeys, { secondFactor: null, passwordHash, signOutGeneration: user.signOutGeneration })
}

export function createLoginService (deps: LoginDeps) {
  const { prisma, throttle, challenges, assertions, requireVerifiedEmail, metrics } = deps
  return {
    /**
     * Unknown account, wrong password and deactivated account fail identically, after the
     * same argon2 work (OWASP Authentication Cheat Sheet: no account enumeration). Only
     * once the password has proved correct may the answer say more: with
     * REQUIRE_EMAIL_VERIFICATION an unverified user gets 403 EMAIL_NOT_VERIFIED and a fresh
     * link (the old one may have expired, and `admitReminder` has the mailbox's budget
     * spent), and no session. Before any password is checked,
     * an identifier that failed too often must wait (429 RATE_LIMITED, the same for an
     * identifier of no account); every failure counts, and a correct password clears them
     * (with a second factor set, only the code that completes the login does).
     * A successful login takes two statements in all (see login-records.ts).
     */
    async login (who: LoginIdentifier, password: string, device: SigningInDevice, admitReminder: MailAdmission): Promise<LoginOutcome> {
      const key = throttle.keys.of(loginIdentifierOf(who))
      return await throttle.inTurn(key, async () => await passwordAttempt(deps, who, key, password, device, admitReminder))
    },

    /**
     * The second step of a login: one code meets the challenge (see ChallengeService.meet)
     * and the session opens exactly as a password-only login's would.
     */
    async completeSecondFactor (mfaToken: string, proof: SecondFactorProof, device: SigningInDevice): Promise<SignedIn> {
      const met = await challenges.meet(mfaToken, proof, device.ip)
      // Deleted since its challenge was met: that challenge is over, as the client is told.
      const user = await userById(prisma, met.userId, { id: true })
      if (user === null) throw apiError('MFA_CHALLENGE_EXPIRED')
      return signIn(deps, user, device, met.throttleKeys, met.proof)
    },

    /**
     * Passwordless sign-in with a discoverable passkey that verified the user: two factors in
     * one (possession and PIN or biometrics), so no second step; the session opens as a
     * login's would. A deactivated account is refused like an unknown passkey.
     */
    async signInWithPasskey (response: AuthenticationResponseJSON, device: SigningInDevice, admitReminder: MailAdmission): Promise<SignedIn> {
      const outcome = await assertions.verify({ response, purpose: 'login', bindingId: null, userId: null, requireUserVerification: true, ip: device.ip })
      const user = outcome.ok
        ? await userById(prisma, outcome.userId, { id: true, role: true, emailVerifiedAt: true, isActive: true, email: true, username: true })
        : null
      if (!outcome.ok || user === null || !user.isActive) {
        metrics.login('invalid_credentials')
        throw apiError(outcome.ok ? 'PASSKEY_INVALID' : outcome.code)
      }
      if (requireVerifiedEmail && user.emailVerifiedAt === null) return refuseUnverified(deps, user, admitReminder)
      return signIn(deps, user, device, [...throttle.keys.account(user), throttle.keys.secondFactor(user.id)], { secondFactor: 'webauthn', userVerified: true, passwordless: true, passkeyId: outcome.passkeyId, passwordHash: outcome.passwordHash, signOutGeneration: outcome.signOutGeneration })
    }
  }
}

export type LoginService = ReturnType<typeof createLoginService>

/**
 * The identifier a login names the account by, in canonical form (case and unicode variants
 * are one): its key (IdentifierKeys.of) is what the brute-force backoff and the per-account
 * rate limit count under.
 */
export function loginIdentifierOf (who: LoginIdentifier): string {
  return canonical('email' in who ? who.email : 'username' in who ? who.username : who.identifier)
}

// What could name an account and cannot be a password typed into the wrong field: an address
// as registration takes one (ajv's email format, lower-cased as the identifier is: dot-atoms
// of letters, digits and !#$%&'*+/=?^_`{|}~- before the '@', at most 64 of them; host name
// labels after it, the last beginning with a letter, as Email's pattern asks). A
// username-shaped identifier could be either (Winter.Is.Coming.2025).
const ATOM = "[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
const LABEL = '[a-z0-9](?:[a-z0-9-]*[a-z0-9])?'
const ADDRESS = new RegExp(`^(?=[^@]{1,64}@)${ATOM}(?:\\.${ATOM})*@(?:${LABEL}\\.)+(?=[a-z])${LABEL}$`)

/**
 * The identifier an unknown-account attempt used, canonical and bounded, for the audit trail,
 * when it is an address: anything else may be a password typed into the wrong field, which
 * is not kept (regression: admins read it in the trail for a year, and the next login from the
 * client address named its owner). Only ASCII, as a registered address is: look-alike
 * characters, zero-width ones and bidi controls would let a stranger write an entry that
 * reads as another's address (regression).
 */
function triedIdentifier (who: LoginIdentifier): { identifier?: string } {
  const identifier = loginIdentifierOf(who)
  return ADDRESS.test(identifier) && identifier.length <= 254 ? { identifier } : {}
}

function lookupOf (who: LoginIdentifier): { email: string } | { username: string } {
  if ('email' in who) return { email: canonical(who.email) }
  if ('username' in who) return { username: canonical(who.username) }
  const identifier = canonical(who.identifier)
  return identifier.includes('@') ? { email: identifier } : { username: identifier }
}
