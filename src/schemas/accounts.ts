// Bodies and responses of the account routes: password change and reset, email verification.
import { Type } from '@sinclair/typebox'
import { EmailLookup, NewPassword, PresentedPassword, type PasswordPolicy } from './common.js'

/** A token from a mailed link. Bounded, not shaped: any wrong value is the route's own 400 code. */
const MailedToken = Type.String({ minLength: 1, maxLength: 256, description: 'the `token` parameter of the mailed link' })

export const ChangePasswordBody = (policy: PasswordPolicy) => Type.Object({
  currentPassword: PresentedPassword(policy),
  newPassword: NewPassword(policy)
}, { additionalProperties: false })

// Looked up as any address an account may have: one taken under older rules can still be reset.
export const ForgotPasswordBody = Type.Object({ email: EmailLookup }, { additionalProperties: false })

export const ResetPasswordBody = (policy: PasswordPolicy) => Type.Object({
  token: MailedToken,
  password: NewPassword(policy)
}, { additionalProperties: false })

export const VerifyEmailBody = Type.Object({ token: MailedToken }, { additionalProperties: false })

/** The current password, asked before a new way into the account (a factor, a passkey): a session's token alone is not enough. */
export const CurrentPasswordBody = (policy: PasswordPolicy) => Type.Object({
  currentPassword: PresentedPassword(policy)
}, { additionalProperties: false })

/** Resend takes no input; an absent body is validated as `{}`. */
export const EmptyBody = Type.Object({}, { additionalProperties: false })

export const Accepted = Type.Object({
  message: Type.String({ description: 'the same whatever happened, so it tells nothing about the account' })
}, { title: 'Accepted' })
