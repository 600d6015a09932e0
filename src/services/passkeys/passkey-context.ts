// What the passkey services share: their collaborators and the acting user.
import type { WebauthnSettings } from '../../config-webauthn.js'
import type { PrismaClient } from '../../db/prisma.js'
import type { AuditService } from '../admin/audit.js'
import type { MailOutbox } from '../mail/outbox.js'
import type { CeremonyChallenges } from './ceremony-challenges.js'

export interface PasskeyDeps {
  prisma: PrismaClient
  ceremonies: CeremonyChallenges
  audit: AuditService
  outbox: MailOutbox
  settings: WebauthnSettings
  now: () => Date
}

export interface PasskeyActor {
  userId: string
  sessionId: string
  ip: string
}
