// Registering a passkey: creation options bound to the session, then the attested credential stored.
import type { PublicKeyCredentialCreationOptionsJSON, RegistrationResponseJSON, VerifiedRegistrationResponse } from '@simplewebauthn/server'
import { isUniqueViolation } from '../../db/refusals.js'
import { apiError, withStatus } from '../../errors.js'
import { CEREMONY_TTL_SECONDS } from './ceremony-challenges.js'
import { clientDataOf, originRefusal } from './ceremony-data.js'
import type { PasskeyActor, PasskeyDeps } from './passkey-context.js'
import { descriptorsOf, insertPasskey, passkeyCount, type PasskeyView } from './passkey-store.js'
import { provenEmailOf } from '../accounts/email-of.js'
import { lockUser, userById } from '../accounts/user-store.js'
import { assertStillProven, type CheckedPassword } from '../passwords/checked-password.js'
import { dropRecoveryCodesWithoutFactor } from '../mfa/second-factors.js'
import { cancelAppSetUp } from '../mfa/factors.js'
import { assertFactorProvenBeside } from '../mfa/held-proofs.js'
import { markProven } from '../sessions/session-store.js'
import { webauthn } from './webauthn.js'

type RegistrationInfo = Extract<VerifiedRegistrationResponse, { verified: true }>['registrationInfo']

/**
 * The most passkeys one user may have. People with a passkey per device and a few security
 * keys in a drawer reach ten or so, not hundreds; every options call of a sign-in lists them
 * all (allowCredentials, excludeCredentials) and so does GET /auth/passkeys, so without a cap
 * one account could make each of those answers megabytes long.
 */
export const MAX_PASSKEYS_PER_USER = 20

/** WebAuthn Level 3, 7.1 step 25: an RP should refuse longer credential ids. */
const MAX_CREDENTIAL_ID_BYTES = 1023

/**
 * The attested credential of a registration ceremony whose challenge this session was given
 * (live: five minutes, and not yet spent), from an allowed origin; 400 for a response that fails
 * verification. The challenge is spent by storePasskey.
 */
async function verifiedCredential ({ prisma, ceremonies, settings }: PasskeyDeps, actor: PasskeyActor, response: RegistrationResponseJSON): Promise<{ challenge: string, info: RegistrationInfo }> {
  const data = clientDataOf(response.response.clientDataJSON)
  if (data === null) throw withStatus('PASSKEY_INVALID', 400)
  // Looked at first, spent only under the user's row (storePasskey): a response to no live
  // ceremony of this session costs no verification (regression: it cost an attestation's).
  if (!await ceremonies.isLive(prisma, data.challenge, 'registration', actor.sessionId)) throw withStatus('PASSKEY_CHALLENGE_EXPIRED', 400)
  const refusal = originRefusal(data, 'webauthn.create', settings.origins, null, settings.rpId)
  if (refusal !== null) throw withStatus(refusal, 400)
  const { verifyRegistrationResponse } = await webauthn()
  const verification = await verifyRegistrationResponse({
    response, expectedChallenge: data.challenge, expectedOrigin: settings.origins, expectedRPID: settings.rpId, requireUserVerification: false
  }).catch((error: unknown) => {
    throw withStatus(/RP ID/.test(String(error)) ? 'PASSKEY_RP_ID_MISMATCH' : 'PASSKEY_INVALID', 400)
  })
  if (!verification.verified) throw withStatus('PASSKEY_INVALID', 400)
  // The id stored is the one in the authenticator data, which the library neither bounds nor
  // compares with the response's `id` (itself checked equal to `rawId`): both must agree.
  const { id } = verification.registrationInfo.credential
  if (id !== response.id || Buffer.from(id, 'base64url').length > MAX_CREDENTIAL_ID_BYTES) throw withStatus('PASSKEY_INVALID', 400)
  return { challenge: data.challenge, info: verification.registrationInfo }
}

/**
 * One transaction: the ceremony's challenge spent, the passkey, this session's proof of it, and
 * the owner's notice by mail. The challenge is spent under the user's row lock: a remedy that
 * ended the ceremonies under way (a new password) and committed first leaves none to spend
 * (regression: spent before the lock, on another instance, it outlived the remedy). 409 for a known
 * credential, or at MAX_PASSKEYS_PER_USER (counted under the lock, so two registrations racing
 * for the last place cannot both pass); 403 on an unproven address.
 */
async function storePasskey ({ prisma, ceremonies, outbox, audit, now }: PasskeyDeps, actor: PasskeyActor, { challenge, info }: { challenge: string, info: RegistrationInfo }, name: string | undefined): Promise<PasskeyView> {
  const at = now()
  return prisma.$transaction(async tx => {
    await lockUser(tx, actor.userId)
    if (!await ceremonies.consume(tx, challenge, 'registration', actor.sessionId)) throw withStatus('PASSKEY_CHALLENGE_EXPIRED', 400)
    await assertFactorProvenBeside(tx, actor.userId, actor.sessionId, at)
    const to = await provenEmailOf(tx, actor.userId)
    const count = await passkeyCount(tx, actor.userId)
    if (count >= MAX_PASSKEYS_PER_USER) throw apiError('PASSKEY_LIMIT_REACHED')
    // A first factor starts with no codes: codes an older release kept past the last factor's
    // removal (beside this one, in a rolling upgrade) must not stand in for this one.
    await dropRecoveryCodesWithoutFactor(tx, actor.userId)
    await cancelAppSetUp(tx, actor.userId)
    const created = await insertPasskey(tx, actor.userId, {
      id: info.credential.id,
      publicKey: new Uint8Array(info.credential.publicKey),
      counter: BigInt(info.credential.counter),
      transports: info.credential.transports ?? [],
      backedUp: info.credentialBackedUp,
      deviceType: info.credentialDeviceType,
      aaguid: info.aaguid
    }, name ?? `Passkey ${count + 1}`, at)
    if (!await markProven(tx, actor.userId, actor.sessionId, { passkeyId: created.id }, at)) throw apiError('AUTH_SESSION_REVOKED')
    await outbox.queue(tx, { kind: 'passkey_added', to, name: created.name })
    await audit.recordIn(tx, { action: 'passkey.registered', actorId: actor.userId, subjectId: actor.userId, ip: actor.ip, details: { passkeyId: created.id, aaguid: created.aaguid } })
    return created
  }).catch((error: unknown) => {
    if (isUniqueViolation(error)) throw apiError('PASSKEY_ALREADY_REGISTERED')
    throw error
  })
}

export function createPasskeyRegistration (deps: PasskeyDeps) {
  const { prisma, ceremonies, audit, outbox, settings, now } = deps
  return {
    /**
     * Registration options for a discoverable credential, user verification preferred, the
     * user's existing passkeys excluded; the challenge is bound to the caller's session, and
     * issued only while `password` (checked by the route) is still the user's.
     * 403 EMAIL_NOT_VERIFIED before the address is proven (see provenEmailOf); 409
     * PASSKEY_LIMIT_REACHED at MAX_PASSKEYS_PER_USER, before the browser makes a credential.
     */
    async registrationOptions (actor: PasskeyActor, password: CheckedPassword): Promise<PublicKeyCredentialCreationOptionsJSON> {
      const user = await userById(prisma, actor.userId, { email: true, username: true, emailVerifiedAt: true, profile: { select: { displayName: true } } })
      if (user === null) throw apiError('AUTH_SESSION_REVOKED')
      if (user.emailVerifiedAt === null) throw apiError('EMAIL_NOT_VERIFIED')
      if (await passkeyCount(prisma, actor.userId) >= MAX_PASSKEYS_PER_USER) throw apiError('PASSKEY_LIMIT_REACHED')
      // Issued under the user's row, while the session and the password checked are still theirs: a remedy ends the ceremonies under way.
      const challenge = await prisma.$transaction(async tx => {
        await lockUser(tx, actor.userId)
        await assertStillProven(tx, actor, password, now())
        return await ceremonies.issue('registration', actor.sessionId, tx)
      })
      const { generateRegistrationOptions } = await webauthn()
      return await generateRegistrationOptions({
        rpName: settings.rpName,
        rpID: settings.rpId,
        userName: user.email,
        userID: new Uint8Array(Buffer.from(actor.userId, 'utf8')),
        userDisplayName: user.profile?.displayName ?? user.username ?? user.email,
        challenge: new Uint8Array(Buffer.from(challenge, 'base64url')),
        timeout: CEREMONY_TTL_SECONDS * 1000,
        attestationType: 'none',
        excludeCredentials: await descriptorsOf(prisma, actor.userId),
        authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' }
      })
    },

    /**
     * Stores the credential of a registration ceremony whose challenge this session was
     * given (single use, five minutes); the session counts as having proven it, as a TOTP
     * confirmation does. 400 for a response that fails verification, 409 for a known credential
     * or past MAX_PASSKEYS_PER_USER.
     */
    async register (actor: PasskeyActor, response: RegistrationResponseJSON, name: string | undefined): Promise<PasskeyView> {
      const stored = async () => await storePasskey(deps, actor, await verifiedCredential(deps, actor, response), name)
      const passkey = await stored().catch(async (error: unknown) => {
        // Every refused passkey is audited, as the assertions' are (passkey.failed).
        const code = (error as { code?: unknown }).code
        if (typeof code === 'string' && code.startsWith('PASSKEY_')) {
          await audit.record({ action: 'passkey.failed', actorId: actor.userId, subjectId: actor.userId, ip: actor.ip, details: { during: 'registration', code } })
        }
        throw error
      })
      outbox.wake()
      return passkey
    }
  }
}
