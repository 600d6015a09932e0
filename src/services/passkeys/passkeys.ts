// The user's passkeys: registration ceremony, list, rename, remove; and the options of every ceremony that asks for one.
import {
  generateAuthenticationOptions, generateRegistrationOptions, verifyRegistrationResponse,
  type PublicKeyCredentialCreationOptionsJSON, type PublicKeyCredentialRequestOptionsJSON, type RegistrationResponseJSON
} from '@simplewebauthn/server'
import type { WebauthnSettings } from '../../config-webauthn.js'
import type { Db, PrismaClient } from '../../db/prisma.js'
import { apiError, withStatus } from '../../errors.js'
import type { AuditService } from '../audit.js'
import { CEREMONY_TTL_SECONDS, type CeremonyChallenges, type CeremonyPurpose } from './ceremony-challenges.js'
import { clientDataOf, originRefusal } from './ceremony-data.js'

export interface PasskeyDeps {
  prisma: PrismaClient
  challenges: CeremonyChallenges
  audit: AuditService
  settings: WebauthnSettings
  now: () => Date
}

export interface PasskeyView {
  id: string
  name: string
  createdAt: Date
  lastUsedAt: Date | null
  backedUp: boolean
  transports: string[]
  aaguid: string
}

export interface PasskeyActor {
  userId: string
  sessionId: string
  ip: string
}

const viewSelect = { id: true, name: true, createdAt: true, lastUsedAt: true, backedUp: true, transports: true, aaguid: true } as const
const UNIQUE_VIOLATION = 'P2002'

export function createPasskeyService ({ prisma, challenges, audit, settings, now }: PasskeyDeps) {
  const descriptorsOf = async (db: Db, userId: string) =>
    (await db.passkey.findMany({ where: { userId }, select: { id: true, transports: true }, orderBy: { createdAt: 'asc' } }))
      .map(({ id, transports }) => ({ id, transports }))

  /** Options for an assertion: the caller's passkeys when the user is known, none (discoverable credentials) otherwise. */
  async function requestOptions (purpose: Exclude<CeremonyPurpose, 'registration'>, bindingId: string | null, userId: string | null): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const challenge = await challenges.issue(purpose, bindingId)
    return generateAuthenticationOptions({
      rpID: settings.rpId,
      challenge: new Uint8Array(Buffer.from(challenge, 'base64url')),
      timeout: CEREMONY_TTL_SECONDS * 1000,
      allowCredentials: userId === null ? [] : await descriptorsOf(prisma, userId),
      // A passwordless sign-in is two factors in one only if the authenticator verified the user.
      userVerification: purpose === 'login' ? 'required' : 'preferred'
    })
  }

  return {
    /** Whether the user has a passkey (then it is a second factor of theirs). */
    async has (userId: string, db: Db = prisma): Promise<boolean> {
      return await db.passkey.count({ where: { userId } }) > 0
    },

    async list (userId: string): Promise<PasskeyView[]> {
      return prisma.passkey.findMany({ where: { userId }, select: viewSelect, orderBy: { createdAt: 'asc' } })
    },

    /**
     * Registration options for a discoverable credential, user verification preferred, the
     * user's existing passkeys excluded; the challenge is bound to the caller's session.
     */
    async registrationOptions (actor: PasskeyActor): Promise<PublicKeyCredentialCreationOptionsJSON> {
      const user = await prisma.user.findUnique({ where: { id: actor.userId }, select: { email: true, username: true, profile: { select: { displayName: true } } } })
      if (user === null) throw apiError('AUTH_SESSION_REVOKED')
      const challenge = await challenges.issue('registration', actor.sessionId)
      return generateRegistrationOptions({
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
     * confirmation does. 400 for a response that fails verification, 409 for a known credential.
     */
    async register (actor: PasskeyActor, response: RegistrationResponseJSON, name: string | undefined): Promise<PasskeyView> {
      const data = clientDataOf(response.response.clientDataJSON)
      if (!await challenges.consume(prisma, data.challenge, 'registration', actor.sessionId)) throw withStatus('PASSKEY_CHALLENGE_EXPIRED', 400)
      const refusal = originRefusal(data, 'webauthn.create', settings.origins, null, settings.rpId)
      if (refusal !== null) throw withStatus(refusal, 400)
      const verification = await verifyRegistrationResponse({
        response, expectedChallenge: data.challenge, expectedOrigin: settings.origins, expectedRPID: settings.rpId, requireUserVerification: false
      }).catch((error: unknown) => {
        throw withStatus(/RP ID/.test(String(error)) ? 'PASSKEY_RP_ID_MISMATCH' : 'PASSKEY_INVALID', 400)
      })
      if (!verification.verified) throw withStatus('PASSKEY_INVALID', 400)
      const info = verification.registrationInfo
      const at = now()
      const count = await prisma.passkey.count({ where: { userId: actor.userId } })
      const passkey = await prisma.passkey.create({
        data: {
          id: info.credential.id,
          userId: actor.userId,
          publicKey: new Uint8Array(info.credential.publicKey),
          counter: BigInt(info.credential.counter),
          transports: info.credential.transports ?? [],
          backedUp: info.credentialBackedUp,
          deviceType: info.credentialDeviceType,
          aaguid: info.aaguid,
          name: name ?? `Passkey ${count + 1}`,
          createdAt: at
        },
        select: viewSelect
      }).catch((error: unknown) => {
        if ((error as { code?: unknown }).code === UNIQUE_VIOLATION) throw apiError('PASSKEY_ALREADY_REGISTERED')
        throw error
      })
      await prisma.session.updateMany({ where: { id: actor.sessionId, userId: actor.userId }, data: { passkeyProvenAt: at } })
      await audit.record({ action: 'passkey.registered', actorId: actor.userId, subjectId: actor.userId, ip: actor.ip, details: { passkeyId: passkey.id, aaguid: passkey.aaguid } })
      return passkey
    },

    /** Renames one of the caller's passkeys; 404 for another user's or an unknown id. */
    async rename (actor: PasskeyActor, id: string, name: string): Promise<PasskeyView> {
      const { count } = await prisma.passkey.updateMany({ where: { id, userId: actor.userId }, data: { name } })
      if (count === 0) throw apiError('NOT_FOUND')
      await audit.record({ action: 'passkey.renamed', actorId: actor.userId, subjectId: actor.userId, ip: actor.ip, details: { passkeyId: id } })
      return prisma.passkey.findUniqueOrThrow({ where: { id }, select: viewSelect })
    },

    /** Removes one of the caller's passkeys; 404 for another user's or an unknown id. */
    async remove (actor: PasskeyActor, id: string): Promise<void> {
      const { count } = await prisma.passkey.deleteMany({ where: { id, userId: actor.userId } })
      if (count === 0) throw apiError('NOT_FOUND')
      await audit.record({ action: 'passkey.removed', actorId: actor.userId, subjectId: actor.userId, ip: actor.ip, details: { passkeyId: id } })
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
