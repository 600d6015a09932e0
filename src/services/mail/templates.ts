// Every mail the service sends: subject, plain text and HTML (values escaped), and the links they carry.

export interface MailContent {
  subject: string
  text: string
  html: string
}

/** Puts the token into a link template (`{token}` marks the place; checked at start-up). */
export function linkFor (template: string, token: string): string {
  return template.replaceAll('{token}', encodeURIComponent(token))
}

export function verifyEmailMail ({ link, ttlSeconds }: { link: string, ttlSeconds: number }): MailContent {
  return compose('Confirm your email address', [
    'Please confirm that this address belongs to your account by opening this link:',
    { link },
    `The link works once, for ${duration(ttlSeconds)}. If you did not create an account, ignore this mail.`
  ])
}

export function confirmEmailChangeMail ({ link, ttlSeconds }: { link: string, ttlSeconds: number }): MailContent {
  return compose('Confirm your new email address', [
    'You asked to use this address for your account. Confirm it by opening this link:',
    { link },
    `The link works once, for ${duration(ttlSeconds)}, while you stay signed in where you asked for the change. Until then your account keeps its current address. If you did not ask for this, ignore this mail.`
  ])
}

/** To the old address. The new one is masked: the old mailbox may no longer be the owner's. */
export function emailChangeNoticeMail ({ newEmail }: { newEmail: string }): MailContent {
  return compose('Your email address is being changed', [
    `Someone signed in to your account asked to change its email address to ${mask(newEmail)}. The change happens once the new address is confirmed.`,
    'If this was not you, change your password now and contact support.'
  ])
}

/** Asked for by the owner (`forgot`) or by an administrator: worded for either. */
export function passwordResetMail ({ link, ttlSeconds }: { link: string, ttlSeconds: number }): MailContent {
  return compose('Reset your password', [
    'A password reset was requested for your account. To choose a new password, open this link:',
    { link },
    `The link works once, for ${duration(ttlSeconds)}, until a newer reset link is sent. If you do not want to change your password, ignore this mail: it stays as it is.`
  ])
}

/** After a change or a reset (ASVS V6: users are told when their credentials change). */
export function passwordChangedMail ({ everywhere }: { everywhere: boolean }): MailContent {
  return securityNotice('Your password was changed', everywhere
    ? 'The password of your account was reset, and every session was signed out.'
    : 'The password of your account was changed, and your other sessions were signed out.')
}

export function mfaEnabledMail (): MailContent {
  return securityNotice('Two-step sign-in is on',
    'An authenticator app was set up as a second factor for your account: signing in now asks for its code. Keep your recovery codes somewhere safe.')
}

/** An app set up on an account whose passkeys already made sign-in two-step. */
export function appAddedMail ({ codesReplaced }: { codesReplaced: boolean }): MailContent {
  const codes = codesReplaced
    ? 'New recovery codes were made with it, and the earlier ones no longer work: keep the new ones somewhere safe.'
    : 'Keep your recovery codes somewhere safe.'
  return securityNotice('An authenticator app was added', `An authenticator app was set up as a second factor for your account, beside your passkeys: signing in can now ask for its code. ${codes}`)
}

/** The app removed while passkeys remain: sign-in stays two-step. */
export function appRemovedMail (): MailContent {
  return securityNotice('Your authenticator app was removed', 'The authenticator app was removed from your account: its codes no longer work. Your passkeys remain your second factor, and any recovery codes left still work.')
}

export function mfaDisabledMail ({ byAdmin }: { byAdmin: boolean }): MailContent {
  return securityNotice('Two-step sign-in is off', byAdmin
    ? 'An administrator removed the second factor of your account and signed out every session. Signing in now asks for your password only; set up a second factor again.'
    : 'The second factor of your account was removed: signing in now asks for your password only.')
}

export function passkeyAddedMail ({ name }: { name: string }): MailContent {
  // Not "then remove it yourself": beside a factor only a factor makes a session fresh, and the
  // owner of an account whose only factor is this passkey has none to prove.
  return securityNotice('A passkey was added', `A passkey named "${name}" was added to your account: it signs in without a password, and is a second factor after one.`,
    'If this was not you, reset your password now: every session is signed out and the passkey no longer signs in alone. Then contact support to have it removed (signing in may ask for it until then).')
}

export function passkeyRemovedMail ({ name, lastFactor = false }: { name: string, lastFactor?: boolean }): MailContent {
  const removed = `The passkey named "${name}" was removed from your account and no longer signs in.`
  return securityNotice('A passkey was removed', lastFactor ? `${removed} It was the last second factor of your account: signing in now asks for your password only, and any recovery codes you kept no longer work.` : removed)
}

/** After the deletion, to an address the account had proven: nothing is left to reset, so no advice to. */
export function accountDeletedMail ({ byAdmin }: { byAdmin: boolean }): MailContent {
  return compose('Your account was deleted', byAdmin
    ? ['An administrator deleted your account and everything in it. It cannot be restored.', 'If you did not expect this, contact support.']
    : ['Your account and everything in it were deleted, from a session signed in to it, with its password. It cannot be restored.', 'If this was not you, someone knew your password: change it wherever else you use it, and contact support.'])
}

export function recoveryCodesRegeneratedMail (): MailContent {
  // A reset keeps the codes, as it keeps the factor they stand in for: the remedy says to replace them too.
  return securityNotice('New recovery codes', 'New recovery codes were made for your account; the earlier ones no longer work.',
    'If this was not you, someone knew your password: reset it now, then sign in and make new recovery codes (the ones made here keep working until you do).')
}

export function recoveryCodeUsedMail ({ left }: { left: number }): MailContent {
  return securityNotice('A recovery code was used', `A recovery code was used to sign in to your account or confirm it was you. ${left === 1 ? '1 code is' : `${left} codes are`} left${left <= 3 ? ': make new ones from your account settings' : ''}.`)
}

/**
 * Someone proved the password and went no further (ASVS 6.3.5): the owner's own abandoned sign-in
 * reads the same, so the mail says what to do in either case.
 */
export function signInUnfinishedMail ({ startedAt }: { startedAt: Date }): MailContent {
  return compose('Someone entered your password', [
    `A sign-in to your account began at ${minuteOf(startedAt)} UTC with the right password, and went no further: the second step, a code or a passkey, was not passed.`,
    'If this was you, there is nothing to do. If not, someone knows your password: change it now (unless you have since), and wherever else you use it. Your second factor stopped them.'
  ])
}

/**
 * A sign-in from a device the account had not been used on lately, or after failed attempts
 * (ASVS 6.3.5). `device` is a few words from a fixed list (sessions/devices.ts), never the
 * client's own.
 */
export function newSignInMail ({ at, ip, device, newDevice, failedAttempts }: { at: Date, ip: string, device: string, newDevice: boolean, failedAttempts: number }): MailContent {
  const why = [
    ...(newDevice ? ['from a device or browser it had not been used on lately'] : []),
    ...(failedAttempts > 0 ? [`after ${failedAttempts === 1 ? '1 failed attempt' : `${failedAttempts} failed attempts`}`] : [])
  ]
  return compose('New sign-in to your account', [
    `Your account was signed in to at ${minuteOf(at)} UTC, ${why.join(', and ')}: ${device}, from the address ${ip}.`,
    'If this was you, there is nothing to do. If not, someone knows your password: change it now (that signs everyone else out), and wherever else you use it, and turn on two-step sign-in.',
    'Your account\'s activity lists every sign-in, those within a quarter of an hour of this mail too.'
  ])
}

type Paragraph = string | { link: string }

/** A change to the account's security, and what the owner does when it was not them. */
function securityNotice (subject: string, change: string, remedy = 'If this was not you, reset your password now and contact support.'): MailContent {
  return compose(subject, [change, remedy])
}

function compose (subject: string, paragraphs: Paragraph[]): MailContent {
  const text = paragraphs.map(p => typeof p === 'string' ? p : p.link).join('\n\n')
  const body = paragraphs.map(p => typeof p === 'string'
    ? `<p>${escapeHtml(p)}</p>`
    : `<p><a href="${escapeHtml(p.link)}">${escapeHtml(p.link)}</a></p>`)
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head><body>${body.join('')}</body></html>`
  return { subject, text: `${text}\n`, html }
}

export function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`)
}

/** a•••@example.com: enough to recognise one's own address, not to learn someone else's. */
export function mask (email: string): string {
  const at = email.lastIndexOf('@')
  return `${email.slice(0, Math.min(1, at))}•••${email.slice(at)}`
}

/** 2026-12-06 20:41, in UTC. */
function minuteOf (at: Date): string {
  return at.toISOString().slice(0, 16).replace('T', ' ')
}

function duration (seconds: number): string {
  const [amount, unit] = seconds % 3600 === 0 ? [seconds / 3600, 'hour'] : seconds % 60 === 0 ? [seconds / 60, 'minute'] : [seconds, 'second']
  return `${amount} ${unit}${amount === 1 ? '' : 's'}`
}
