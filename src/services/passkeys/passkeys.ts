// The user's passkeys: registration ceremony, list, rename, remove; and the options of every ceremony that asks for one.
import type { PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server'
import type { Db } from '../../db/prisma.js'
import { apiError } from '../../errors.js'
import { lockUser } from '../accounts/user-store.js'
import { CEREMONY_TTL_SECONDS, type CeremonyPurpose } from './ceremony-challenges.js'
import type { PasskeyActor, PasskeyDeps } from './passkey-context.js'
import { deletePasskey, descriptorsOf, hasPasskey, passkeysOf, renamePasskey, type PasskeyView } from './passkey-store.js'
import { createPasskeyRegistration } from './registration.js'
import { dropRecoveryCodesWithoutFactor, hasSecondFactor } from '../mfa/second-factors.js'
import { assertFactorProvenBeside } from '../mfa/held-proofs.js'
import { webauthn } from './webauthn.js'

export function createPasskeyService (deps: PasskeyDeps) {
  const { prisma, ceremonies, audit, outbox, settings, now } = deps

  /** Options for an assertion: the caller's passkeys when the user is known, none (discoverable credentials) otherwise. */
  async function requestOptions (purpose: Exclude<CeremonyPurpose, 'registration'>, bindingId: string | null, userId: string | null): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const challenge = await ceremonies.issue(purpose, bindingId)
    const { generateAuthenticationOptions } = await webauthn()
    return await generateAuthenticationOptions({
      rpID: settings.rpId,
      challenge: new Uint8Array(Buffer.from(challenge, 'base64url')),
      timeout: CEREMONY_TTL_SECONDS * 1000,
      allowCredentials: userId === null ? [] : await descriptorsOf(prisma, userId),
      // A passwordless sign-in is two factors in one only if the authenticator verified the user.
      userVerification: purpose === 'login' ? 'required' : 'preferred'
    })
  }

  return {
    ...createPasskeyRegistration(deps),

    /** Whether the user has a passkey (then it is a second factor of theirs). */
    async has (userId: string, db: Db = prisma): Promise<boolean> {
      return await hasPasskey(db, userId)
    },

    async list (userId: string): Promise<PasskeyView[]> {
      return await passkeysOf(prisma, userId)
    },

    /** Renames one of the caller's passkeys; 404 for another user's or an unknown id. */
    async rename (actor: PasskeyActor, id: string, name: string): Promise<PasskeyView> {
      return await prisma.$transaction(async tx => {
        const renamed = await renamePasskey(tx, actor.userId, id, name)
        if (renamed === null) throw apiError('NOT_FOUND')
        await audit.recordIn(tx, { action: 'passkey.renamed', actorId: actor.userId, subjectId: actor.userId, ip: actor.ip, details: { passkeyId: id } })
        return renamed
      })
    },

    /**
     * Removes one of the caller's passkeys, with the recovery codes when it was the last factor,
     * and tells the owner by mail; 404 for another user's or an unknown id.
     */
    async remove (actor: PasskeyActor, id: string): Promise<void> {
      await prisma.$transaction(async tx => {
        await lockUser(tx, actor.userId)
        // The freshness was checked before this row's lock: beside a factor, one this session proved.
        await assertFactorProvenBeside(tx, actor.userId, actor.sessionId, now())
        const removed = await deletePasskey(tx, actor.userId, id)
        if (removed === null) throw apiError('NOT_FOUND')
        const factorLeft = hasSecondFactor(await dropRecoveryCodesWithoutFactor(tx, actor.userId))
        await outbox.queue(tx, { kind: factorLeft ? 'passkey_removed' : 'last_passkey_removed', to: removed.email, name: removed.name })
        // `recoveryCodes` also tells this release's entries from an older one's (deploy/upgrades).
        await audit.recordIn(tx, { action: 'passkey.removed', actorId: actor.userId, subjectId: actor.userId, ip: actor.ip, details: { passkeyId: id, recoveryCodes: factorLeft ? 'kept' : 'ended' } })
      })
      outbox.wake()
    },

    /** Options for a passwordless sign-in: no user named, the browser offers its discoverable credentials. */
    loginOptions: async () => requestOptions('login', null, null),
    /** Options for the second step of a login, bound to its challenge. */
    secondFactorOptions: async (mfaChallengeId: string, userId: string) => requestOptions('second_factor', mfaChallengeId, userId),
    /** Options for reauthenticating on this session. */
    reauthenticationOptions: async (userId: string, sessionId: string) => requestOptions('reauthentication', sessionId, userId)
  }
}

export type PasskeyService = ReturnType<typeof createPasskeyService>
