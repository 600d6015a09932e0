// Rendering a claimed mail: its template filled in, and the link's one-time token issued when the mail is sent.
import type { PrismaClient } from '../../db/prisma.js'
import type { OutgoingMail } from './sender.js'
import type { ClaimedMail, MailOutbox } from './outbox.js'
import {
  accountDeletedMail, appAddedMail, appRemovedMail, confirmEmailChangeMail, emailChangeNoticeMail, linkFor, mfaDisabledMail, mfaEnabledMail, newSignInMail, passkeyAddedMail, passkeyRemovedMail, passwordChangedMail, passwordResetMail,
  recoveryCodesRegeneratedMail, recoveryCodeUsedMail, signInUnfinishedMail, verifyEmailMail
} from './templates.js'
import type { OneTimeTokenService } from '../tokens/one-time-tokens.js'
import type { AuditService } from '../admin/audit.js'
import { lockUser, userByEmail, userById } from '../accounts/user-store.js'

export interface MailRenderingDeps {
  prisma: PrismaClient
  outbox: MailOutbox
  oneTimeTokens: OneTimeTokenService
  audit: Pick<AuditService, 'recordIn'>
  links: { passwordReset: string, emailVerification: string }
  ttlSeconds: { passwordReset: number, emailVerification: number }
}

/**
 * Why a claimed mail has nothing to send. The first three drop it, unsent: sent, it would only
 * lead to an error page, or reach an address no account of the service has now.
 */
export type NothingToSend =
  /** Its link was spent, revoked or expired since the mail was queued, or derived under an AUTH_SECRET replaced since. */
  | 'link_dead'
  /** A reset asked for an address no active account has. */
  | 'no_active_account'
  /** The account was deactivated, deleted or given another address between its look-up and its lock, as its reset link was to be made. */
  | 'account_changed'
  /**
   * A reset mail gone from the outbox when read again under the account's row: another attempt
   * claimed it while this one was stalled, and sent it or gave it up, and counted that (or the
   * link that attempt made has died since, and its deletion took the mail with it). Not a drop.
   */
  | 'taken_over'

/** A claimed mail rendered: what to send, or why there is nothing to. */
export type RenderedMail = { send: OutgoingMail } | { nothing: NothingToSend }

export type MailRenderer = (mail: ClaimedMail) => Promise<RenderedMail>

/**
 * The reset link goes to an active account only; the account is looked up here, never on the
 * request path. A `forgot` is audited here too, with its link: only now can the entry name an
 * account without telling the requester whether one exists, and it lets the owner see a flood
 * of reset mails on their activity.
 */
async function resetTokenFor ({ prisma, outbox, oneTimeTokens, audit }: MailRenderingDeps, mail: ClaimedMail): Promise<{ tokenId: string } | { nothing: NothingToSend }> {
  if (mail.tokenId !== null) return { tokenId: mail.tokenId }
  const user = await userByEmail(prisma, mail.recipient, { id: true, isActive: true })
  if (user === null || !user.isActive) return { nothing: 'no_active_account' }
  return prisma.$transaction(async tx => {
    // Again under the user's row, which a deactivation or an email change takes: one committed
    // since the look-up wins, and leaves no live link for the account to find again once
    // reactivated, nor one mailed to the address it left.
    await lockUser(tx, user.id)
    // The mail read again under that row too: an attempt stalled past its lease leaves the mail
    // to another claimant, and whichever comes second keeps the first's link and entry, or, the
    // mail gone, does nothing more, whatever became of the account since (regression: two links
    // and two entries for one request).
    const queued = await outbox.current(tx, mail.id)
    if (queued === null) return { nothing: 'taken_over' }
    const now = await userById(tx, user.id, { isActive: true, email: true })
    if (now?.isActive !== true || now.email !== mail.recipient) return { nothing: 'account_changed' }
    if (queued.tokenId !== null) return { tokenId: queued.tokenId }
    const tokenId = await oneTimeTokens.issue(user.id, 'password_reset', mail.recipient, tx)
    await outbox.attachToken(tx, mail.id, tokenId)
    const requestedFrom = mail.data?.requestedFrom
    if (typeof requestedFrom === 'string') await audit.recordIn(tx, { action: 'password.reset_requested', actorId: null, subjectId: user.id, ip: requestedFrom })
    return { tokenId }
  })
}

export function createMailRenderer (deps: MailRenderingDeps): MailRenderer {
  const { oneTimeTokens, links, ttlSeconds } = deps
  const link = (template: string, tokenId: string | null) => linkFor(template, oneTimeTokens.valueOf(tokenId ?? ''))
  // Under the current key too: a link of a replaced AUTH_SECRET is as dead as an expired one.
  // A reset mail whose link an attempt issued before the replacement gets no new one either:
  // every attempt carries the same Message-ID, so the mail keeps the one link.
  const linkLive = ({ tokenId, tokenHash }: ClaimedMail) =>
    tokenId === null || (tokenHash !== null && oneTimeTokens.derivedUnderKey({ id: tokenId, tokenHash }))

  return async function render (mail) {
    if (!linkLive(mail)) return { nothing: 'link_dead' }
    if (mail.kind !== 'password_reset') return { send: filledIn(mail) }
    const reset = await resetTokenFor(deps, mail)
    return 'nothing' in reset ? reset : { send: { to: mail.recipient, ...passwordResetMail({ link: link(links.passwordReset, reset.tokenId), ttlSeconds: ttlSeconds.passwordReset }) } }
  }

  /** Every kind but a reset, whose link is made at its first attempt: its template, filled in from the row. */
  function filledIn (mail: ClaimedMail): OutgoingMail {
    const to = mail.recipient
    const data = mail.data ?? {}
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
      case 'app_added':
        return { to, ...appAddedMail({ codesReplaced: data.codesReplaced === true }) }
      case 'app_removed':
        return { to, ...appRemovedMail() }
      case 'passkey_added':
        return { to, ...passkeyAddedMail({ name: String(data.name) }) }
      case 'passkey_removed':
        return { to, ...passkeyRemovedMail({ name: String(data.name) }) }
      case 'last_passkey_removed':
        return { to, ...passkeyRemovedMail({ name: String(data.name), lastFactor: true }) }
      case 'account_deleted':
        return { to, ...accountDeletedMail({ byAdmin: data.byAdmin === true }) }
      case 'recovery_codes_regenerated':
        return { to, ...recoveryCodesRegeneratedMail() }
      case 'recovery_code_used':
        return { to, ...recoveryCodeUsedMail({ left: Number(data.left) }) }
      case 'new_sign_in':
        return { to, ...newSignInMail({ at: new Date(String(data.at)), ip: String(data.ip), device: String(data.device), newDevice: data.newDevice === true, failedAttempts: Number(data.failedAttempts) }) }
      case 'sign_in_unfinished':
        return { to, ...signInUnfinishedMail({ startedAt: new Date(String(data.startedAt)) }) }
      default:
        // Queued by a newer release beside this one (a rolling upgrade): a failure, tried again
        // later, by an instance that may know it (regression of an earlier release: a mail with no recipient).
        throw new Error(`no template for the mail kind ${String(mail.kind as unknown)}: a newer release queued it`)
    }
  }
}
