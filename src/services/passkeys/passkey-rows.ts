// What the passkey services share: their collaborators, the owner's view of a passkey, and the credential descriptors of options.
import type { WebauthnSettings } from '../../config-webauthn.js'
import type { Db, PrismaClient } from '../../db/prisma.js'
import type { AuditService } from '../admin/audit.js'
import type { MailOutbox } from '../mail/outbox.js'
import type { CeremonyChallenges } from './ceremony-challenges.js'

export interface PasskeyDeps {
  prisma: PrismaClient
  challenges: CeremonyChallenges
  audit: AuditService
  outbox: MailOutbox
  settings: WebauthnSettings
  now: () => Date
}

/** What a passkey's owner sees of it (never the public key). */
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

export const viewSelect = { id: true, name: true, createdAt: true, lastUsedAt: true, backedUp: true, transports: true, aaguid: true } as const

/** The user's passkeys as credential descriptors: what options list to allow or exclude. */
export async function descriptorsOf (db: Db, userId: string) {
  return (await db.passkey.findMany({ where: { userId }, select: { id: true, transports: true }, orderBy: { createdAt: 'asc' } }))
    .map(({ id, transports }) => ({ id, transports }))
}
