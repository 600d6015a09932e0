// Checking a passkey assertion: single-use challenge, origin, RP ID, signature, user verification, counter.
import type { AuthenticationResponseJSON, WebAuthnCredential } from '@simplewebauthn/server'
import type { Db, PrismaClient } from '../../db/prisma.js'
import type { ErrorCode } from '../../errors.js'
import type { AuditService } from '../admin/audit.js'
import type { CeremonyChallenges, CeremonyPurpose } from './ceremony-challenges.js'
import { authenticatorDataOf, clientDataOf, originRefusal } from './ceremony-data.js'
import { decoyCredential } from './decoy.js'
import { credentialOf, passwordlessOf, recordUse } from './passkey-store.js'
import { webauthn } from './webauthn.js'
import type { WebauthnSettings } from '../../config-webauthn.js'

export interface AssertionRequest {
  response: AuthenticationResponseJSON
  purpose: Exclude<CeremonyPurpose, 'registration'>
  /** The session or the MfaChallenge the challenge was issued for; null for a passwordless sign-in. */
  bindingId: string | null
  /** Whose passkey it must be; null when the passkey names the user (passwordless sign-in). */
  userId: string | null
  requireUserVerification: boolean
  ip: string
}

export type AssertionOutcome =
  | { ok: true, userId: string, passkeyId: string, userVerified: boolean, passwordHash: string, signOutGeneration: number }
  | { ok: false, code: ErrorCode, regressed?: { userId: string, passkeyId: string, stored: string, presented: string }, refused?: { userId: string, reason: 'inactive' | 'suspended' | 'user_handle_mismatch' | 'user_not_verified' } }

export interface AssertionDeps {
  prisma: PrismaClient
  ceremonies: CeremonyChallenges
  audit: AuditService
  settings: WebauthnSettings
  now: () => Date
}

/** The user handle a passkey of `userId` carries (WebAuthn 5.4.3: opaque, no personal data): the id's bytes. */
function userHandleOf (userId: string): string {
  return Buffer.from(userId, 'utf8').toString('base64url')
}

/** The library's verdict; it is given counter 0 (the counter rule is ours, below) and never asked for UV (also ours). */
async function signatureOf (settings: WebauthnSettings, request: AssertionRequest, challenge: string, credential: WebAuthnCredential) {
  const { verifyAuthenticationResponse } = await webauthn()
  try {
    const { verified, authenticationInfo } = await verifyAuthenticationResponse({
      response: request.response,
      expectedChallenge: challenge,
      expectedOrigin: settings.origins,
      expectedRPID: settings.rpId,
      credential: { ...credential, counter: 0 },
      requireUserVerification: false
    })
    return verified ? authenticationInfo : null
  } catch {
    return null
  }
}

/** Every check of one assertion, in order; nothing written but the used-up challenge and, on success, the counter. */
async function checkAssertion ({ ceremonies, settings, now }: Omit<AssertionDeps, 'prisma' | 'audit'>, decoy: WebAuthnCredential, db: Db, request: AssertionRequest): Promise<AssertionOutcome> {
  const data = clientDataOf(request.response.response.clientDataJSON)
  if (data === null) return { ok: false, code: 'PASSKEY_INVALID' }
  const authData = authenticatorDataOf(request.response.response.authenticatorData)
  if (!await ceremonies.consume(db, data.challenge, request.purpose, request.bindingId)) return { ok: false, code: 'PASSKEY_CHALLENGE_EXPIRED' }
  const refusal = authData === null ? 'PASSKEY_INVALID' : originRefusal(data, 'webauthn.get', settings.origins, authData.rpIdHash, settings.rpId)
  if (refusal !== null) return { ok: false, code: refusal }
  const stored = await credentialOf(db, request.response.id, request.userId)
  // OWASP Authentication Cheat Sheet: an unknown credential is checked against a decoy key,
  // so it takes the same signature work and gets the same answer as a bad signature.
  const info = await signatureOf(settings, request, data.challenge, stored === null ? decoy : { id: stored.id, publicKey: new Uint8Array(stored.publicKey), counter: 0 })
  if (stored === null || info === null) return { ok: false, code: 'PASSKEY_INVALID' }
  const handle = request.response.response.userHandle
  // From here the signature is the credential's: a refusal is audited under its owner, whose
  // activity then shows their authenticator used without its PIN or with another handle.
  // WebAuthn 7.2 step 6: a user handle given must be the credential's owner's, and a sign-in by
  // passkey alone, where nobody named the user before, needs one.
  if (handle === undefined ? request.userId === null : handle !== userHandleOf(stored.userId)) return { ok: false, code: 'PASSKEY_INVALID', refused: { userId: stored.userId, reason: 'user_handle_mismatch' } }
  if (request.requireUserVerification && !info.userVerified) return { ok: false, code: 'PASSKEY_USER_NOT_VERIFIED', refused: { userId: stored.userId, reason: 'user_not_verified' } }
  // WebAuthn 7.2 step 22: a counter that does not rise (when either side keeps one) means a cloned authenticator.
  const counter = BigInt(info.newCounter)
  if ((counter > 0n || stored.counter > 0n) && counter <= stored.counter) {
    return { ok: false, code: 'PASSKEY_COUNTER_REGRESSED', regressed: { userId: stored.userId, passkeyId: stored.id, stored: stored.counter.toString(), presented: counter.toString() } }
  }
  const alone = request.purpose === 'login'
  // Signing in alone: a deactivated account, or a passkey a new password suspended, is
  // refused before its use is recorded (and audited under its user).
  if (alone && !stored.user.isActive) return { ok: false, code: 'PASSKEY_INVALID', refused: { userId: stored.userId, reason: 'inactive' } }
  const suspended = { ok: false, code: 'PASSKEY_PASSWORD_REQUIRED', refused: { userId: stored.userId, reason: 'suspended' } } as const
  if (alone && !stored.passwordless) return suspended
  const passwordless = alone ? 'required' : request.purpose === 'second_factor' ? 'restored' : 'kept'
  if (!await recordUse(db, stored, { counter, backedUp: info.credentialBackedUp, at: now(), passwordless })) {
    // Written only on the values read: a new password suspended it meanwhile, it went (with
    // its account, or by its owner's hand), or another use came first.
    const passwordlessNow = await passwordlessOf(db, stored.id)
    if (passwordlessNow === null) return { ok: false, code: 'PASSKEY_INVALID' }
    return alone && !passwordlessNow ? suspended : { ok: false, code: 'PASSKEY_COUNTER_REGRESSED' }
  }
  return { ok: true, userId: stored.userId, passkeyId: stored.id, userVerified: info.userVerified, passwordHash: stored.user.passwordHash, signOutGeneration: stored.user.signOutGeneration }
}

export function createAssertionVerifier ({ prisma, ceremonies, audit, settings, now }: AssertionDeps) {
  // Made at the first assertion, when the WebAuthn library is loaded.
  let decoy: Promise<WebAuthnCredential> | undefined
  const check = async (db: Db, request: AssertionRequest) => checkAssertion({ ceremonies, settings, now }, await (decoy ??= decoyCredential()), db, request)

  /** Audits a refusal; after the transaction, since the audit trail writes on a connection of its own. */
  async function report (request: AssertionRequest, outcome: AssertionOutcome): Promise<void> {
    if (outcome.ok) return
    const { regressed, refused } = outcome
    if (regressed !== undefined) {
      const { userId, ...details } = regressed
      await audit.record({ action: 'passkey.counter_regressed', subjectId: userId, ip: request.ip, details })
    }
    const subjectId = regressed?.userId ?? refused?.userId ?? request.userId
    const reason = refused === undefined ? {} : { reason: refused.reason }
    await audit.record({ action: 'passkey.failed', subjectId, ip: request.ip, details: { during: request.purpose, code: outcome.code, ...reason } })
  }

  return {
    /**
     * Checks one assertion within `db` (a transaction of the caller's): every refusal is named
     * by its catalogue code, and an unknown credential is indistinguishable from a bad
     * signature. The challenge is used up whatever the outcome: a retry needs new options.
     * The caller hands the outcome to `report` once its transaction is over.
     */
    check,
    report,

    /** check and report, outside any transaction. */
    async verify (request: AssertionRequest): Promise<AssertionOutcome> {
      const outcome = await check(prisma, request)
      await report(request, outcome)
      return outcome
    }
  }
}

export type AssertionVerifier = ReturnType<typeof createAssertionVerifier>
