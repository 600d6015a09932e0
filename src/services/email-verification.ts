// Proving control of an address: verification after registration, and email changes confirmed by the new mailbox.
import type { PrismaClient, Transaction } from '../db/prisma.js'
import { apiError } from '../errors.js'
import { Prisma } from '../generated/prisma/client.js'
import type { Mailer, OutgoingMail } from './mail.js'
import { confirmEmailChangeMail, emailChangeNoticeMail, linkFor, verifyEmailMail } from './mail-templates.js'
import type { OneTimeTokenService } from './one-time-tokens.js'
import type { SessionService } from './sessions.js'

export interface EmailVerificationDeps {
  prisma: PrismaClient
  tokens: OneTimeTokenService
  sessions: SessionService
  mailer: Mailer
  /** Link template with `{token}`. */
  linkTemplate: string
  ttlSeconds: number
  now: () => Date
}

export interface StagedChange {
  /** The new `pendingEmail`: null when the request cancels a pending change. */
  pendingEmail: string | null
  /** To send once the transaction has committed. */
  mails: OutgoingMail[]
}

export function createEmailVerificationService ({ prisma, tokens, sessions, mailer, linkTemplate, ttlSeconds, now }: EmailVerificationDeps) {
  const linkOf = (token: string) => linkFor(linkTemplate, token)

  /** Issues a token for the account's current address and mails it, off the request path. */
  function sendVerification (userId: string, email: string): void {
    mailer.enqueue(async () => {
      const token = await tokens.issue(userId, 'email_verify', email)
      return { to: email, ...verifyEmailMail({ link: linkOf(token), ttlSeconds }) }
    })
  }

  function sendChangeConfirmation (userId: string, newEmail: string): void {
    mailer.enqueue(async () => {
      const token = await tokens.issue(userId, 'email_change', newEmail)
      return { to: newEmail, ...confirmEmailChangeMail({ link: linkOf(token), ttlSeconds }) }
    })
  }

  return {
    sendVerification,

    /**
     * Inside the caller's update: a new address only becomes `pendingEmail`; it replaces
     * `email` when the token mailed to it comes back, so nobody can take over an address
     * they cannot read. The old address is told. Asking for the current address cancels a
     * pending change. An address of another account is 409 EMAIL_TAKEN (checked again at
     * confirmation, where the unique index has the last word).
     */
    async stageChange (tx: Transaction, user: { id: string, email: string }, requested: string): Promise<StagedChange> {
      if (requested === user.email) {
        await tokens.revoke(tx, user.id, 'email_change')
        return { pendingEmail: null, mails: [] }
      }
      if (await tx.user.findUnique({ where: { email: requested }, select: { id: true } }) !== null) throw apiError('EMAIL_TAKEN')
      const token = await tokens.issue(user.id, 'email_change', requested, tx)
      return {
        pendingEmail: requested,
        mails: [
          { to: requested, ...confirmEmailChangeMail({ link: linkOf(token), ttlSeconds }) },
          { to: user.email, ...emailChangeNoticeMail({ newEmail: requested }) }
        ]
      }
    },

    /**
     * Mails a new link: for the pending address if a change is pending, else for the current
     * one while unverified. A verified account with nothing pending gets no mail (202 all the
     * same: the call is idempotent). The newest link is the only one that works.
     */
    async resend (userId: string, sessionId: string): Promise<void> {
      const user = await prisma.user.findFirst({ where: sessions.liveCaller(userId, sessionId), select: { email: true, pendingEmail: true, emailVerifiedAt: true } })
      if (user === null) throw apiError('AUTH_SESSION_REVOKED')
      if (user.pendingEmail !== null) sendChangeConfirmation(userId, user.pendingEmail)
      else if (user.emailVerifiedAt === null) sendVerification(userId, user.email)
    },

    /**
     * Spends a mailed token, once (conditional update in one transaction with its effect). A
     * verification token only counts for the address it was mailed to and still in use; a
     * change token moves `pendingEmail` to `email`, verified.
     */
    async verify (token: string): Promise<void> {
      const found = await tokens.inspect(token, ['email_verify', 'email_change'])
      if (found.status === 'invalid') throw apiError('VERIFICATION_TOKEN_INVALID')
      if (found.status === 'expired') throw apiError('VERIFICATION_TOKEN_EXPIRED')
      await prisma.$transaction(async tx => {
        const user = await tx.user.findUnique({ where: { id: found.userId }, select: { email: true, pendingEmail: true, emailVerifiedAt: true, isActive: true } })
        const address = found.purpose === 'email_verify' ? user?.email : user?.pendingEmail
        if (user === null || !user.isActive || address !== found.email) throw apiError('VERIFICATION_TOKEN_INVALID')
        if (!await tokens.consume(tx, found.id)) throw apiError('VERIFICATION_TOKEN_INVALID')
        if (found.purpose === 'email_verify') {
          await tx.user.update({ where: { id: found.userId }, data: { emailVerifiedAt: user.emailVerifiedAt ?? now() } })
          return
        }
        if (await tx.user.findUnique({ where: { email: found.email }, select: { id: true } }) !== null) throw apiError('EMAIL_TAKEN')
        await tx.user.update({ where: { id: found.userId }, data: { email: found.email, pendingEmail: null, emailVerifiedAt: now() } })
      }).catch(rethrowTaken)
    }
  }
}

export type EmailVerificationService = ReturnType<typeof createEmailVerificationService>

// Registered by someone else between the check and the update: the unique index refuses it.
function rethrowTaken (error: unknown): never {
  if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') throw apiError('EMAIL_TAKEN')
  throw error
}
