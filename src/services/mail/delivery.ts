// Delivering the outbox: claim due mails, render them, send them, record the outcome; retries with backoff, gives up after a bound.
import type { PrismaClient } from '../../db/prisma.js'
import { isDatabaseUnavailable } from '../../db/errors.js'
import { domainOf, failureOf, type MailLog, type MailSender, type OutgoingMail } from './sender.js'
import type { ClaimedMail, MailOutbox } from './outbox.js'
import {
  confirmEmailChangeMail, emailChangeNoticeMail, linkFor, mfaDisabledMail, mfaEnabledMail, passkeyAddedMail, passkeyRemovedMail, passwordChangedMail, passwordResetMail,
  recoveryCodesRegeneratedMail, recoveryCodeUsedMail, verifyEmailMail
} from './templates.js'
import type { MailMetrics } from '../metrics.js'
import type { OneTimeTokenService } from '../tokens/one-time-tokens.js'

export interface MailDeliveryDeps {
  prisma: PrismaClient
  outbox: MailOutbox
  oneTimeTokens: OneTimeTokenService
  sender: MailSender
  log: MailLog
  metrics: MailMetrics
  now: () => Date
  links: { passwordReset: string, emailVerification: string }
  ttlSeconds: { passwordReset: number, emailVerification: number }
  retry: { maxAttempts: number, baseSeconds: number }
}

/** Mails claimed at once; they are sent together. */
const BATCH = 8
/**
 * How long a claimed mail is left to its claimant: longer than a batch can take to send (its
 * mails go in parallel, and SMTP waits are bounded at 50 s). A crash in the middle of an
 * attempt delays that mail by this much, after which any instance sends it again.
 */
export const LEASE_SECONDS = 120
/** The longest wait between two attempts. */
const MAX_RETRY_SECONDS = 3600

export function createMailDelivery ({ prisma, outbox, oneTimeTokens, sender, log, metrics, now, links, ttlSeconds, retry }: MailDeliveryDeps) {
  /** The reset link goes to an active account only; the account is looked up here, never on the request path. */
  async function resetTokenFor (mail: ClaimedMail): Promise<string | null> {
    if (mail.tokenId !== null) return mail.tokenId
    const user = await prisma.user.findUnique({ where: { email: mail.recipient }, select: { id: true, isActive: true } })
    if (user === null || !user.isActive) return null
    return prisma.$transaction(async tx => {
      const tokenId = await oneTimeTokens.issue(user.id, 'password_reset', mail.recipient, tx)
      await outbox.attachToken(tx, mail.id, tokenId)
      return tokenId
    })
  }

  /** What to send, or null when there is nothing to (a reset asked for an address no active account has). */
  async function render (mail: ClaimedMail): Promise<OutgoingMail | null> {
    const to = mail.recipient
    const data = mail.data ?? {}
    const link = (template: string, tokenId: string | null) => linkFor(template, oneTimeTokens.valueOf(tokenId ?? ''))
    switch (mail.kind) {
      case 'verify_email':
        return { to, ...verifyEmailMail({ link: link(links.emailVerification, mail.tokenId), ttlSeconds: ttlSeconds.emailVerification }) }
      case 'confirm_email_change':
        return { to, ...confirmEmailChangeMail({ link: link(links.emailVerification, mail.tokenId), ttlSeconds: ttlSeconds.emailVerification }) }
      case 'email_change_notice':
        return { to, ...emailChangeNoticeMail({ newEmail: String(data.newEmail) }) }
      case 'password_changed':
        return { to, ...passwordChangedMail({ everywhere: data.everywhere === true }) }
      case 'mfa_enabled':
        return { to, ...mfaEnabledMail() }
      case 'mfa_disabled':
        return { to, ...mfaDisabledMail({ byAdmin: data.byAdmin === true }) }
      case 'passkey_added':
        return { to, ...passkeyAddedMail({ name: String(data.name) }) }
      case 'passkey_removed':
        return { to, ...passkeyRemovedMail({ name: String(data.name) }) }
      case 'recovery_codes_regenerated':
        return { to, ...recoveryCodesRegeneratedMail() }
      case 'recovery_code_used':
        return { to, ...recoveryCodeUsedMail({ left: Number(data.left) }) }
      case 'password_reset': {
        const tokenId = await resetTokenFor(mail)
        return tokenId === null ? null : { to, ...passwordResetMail({ link: link(links.passwordReset, tokenId), ttlSeconds: ttlSeconds.passwordReset }) }
      }
    }
  }

  async function failed (mail: ClaimedMail, error: unknown): Promise<void> {
    const failure = failureOf(error)
    const details = { mailId: mail.id, kind: mail.kind, domain: domainOf(mail.recipient), attempts: mail.attempts, ...failure }
    // A 5xx reply is final (no such mailbox, refused): trying again changes nothing.
    const permanent = typeof failure.responseCode === 'number' && failure.responseCode >= 500
    if (permanent || mail.attempts >= retry.maxAttempts) {
      log.error(details, 'mail given up')
      metrics.mail('given_up')
      await outbox.remove(mail.id)
      return
    }
    const delaySeconds = Math.min(MAX_RETRY_SECONDS, retry.baseSeconds * 2 ** (mail.attempts - 1))
    log.warn({ ...details, retryInSeconds: delaySeconds }, 'mail not sent; will retry')
    metrics.mail('retry')
    await outbox.retryAt(mail.id, new Date(now().getTime() + delaySeconds * 1000))
  }

  async function deliver (mail: ClaimedMail): Promise<void> {
    try {
      const content = await render(mail)
      if (content !== null) await sender.send(mail.id, content)
      await outbox.remove(mail.id)
      if (content !== null) metrics.mail('sent')
      if (content !== null) log.debug({ mailId: mail.id, kind: mail.kind, domain: domainOf(mail.recipient) }, 'mail sent')
    } catch (error) {
      // The database is away: the claim expires and the mail is tried again then.
      if (isDatabaseUnavailable(error)) throw error
      await failed(mail, error)
    }
  }

  // One pass at a time per process; a wake-up during a pass asks for another after it.
  const state: { pass: Promise<void> | null, again: boolean, stopped: boolean, timer?: NodeJS.Timeout } = { pass: null, again: false, stopped: false }

  /** Claims and delivers batches until none is due. */
  async function drain (): Promise<void> {
    for (;;) {
      const batch = state.stopped ? [] : await outbox.claim(BATCH, LEASE_SECONDS)
      if (batch.length === 0) return
      await Promise.all(batch.map(deliver))
    }
  }

  function run (): Promise<void> {
    if (state.pass !== null) {
      state.again = true
      return state.pass
    }
    state.pass = (async () => {
      do {
        state.again = false
        await drain().catch((error: unknown) => log.warn(failureOf(error), 'mail delivery paused: the database is unavailable'))
      } while (state.again && !state.stopped)
    })().finally(() => { state.pass = null })
    return state.pass
  }

  /** Resolves once no pass is under way (a pass may be asked for again while one runs). */
  async function idle (): Promise<void> {
    while (state.pass !== null) await state.pass
  }

  return {
    /** After a commit that queued mail: deliver it now rather than at the next poll. */
    wake (): void {
      if (!state.stopped) run().catch(() => {})
    },

    /** Looks for due mail (other instances', retries) every `pollSeconds`. */
    start (pollSeconds: number): void {
      state.timer = setInterval(() => { if (!state.stopped) run().catch(() => {}) }, pollSeconds * 1000)
      state.timer.unref()
      run().catch(() => {})
    },

    /** Delivers every mail due now, and resolves when none is left (those waiting for a retry stay). */
    async flush (): Promise<void> {
      await run()
      await idle()
    },

    /** Stops polling and lets the pass under way finish; what is left waits in the database for the next start. */
    async stop (): Promise<void> {
      state.stopped = true
      clearInterval(state.timer)
      await idle()
      sender.close()
    }
  }
}

export type MailDelivery = ReturnType<typeof createMailDelivery>
