// What a login answers in either mode: signed in, or a second factor to prove first.
import type { MfaChallenge, User } from './api-types.js'

export interface SignedIn {
  mfaRequired: false
  user: User
  /** The access token's lifetime in seconds. */
  expiresIn: number
}

/** Check `mfaRequired`: when true, complete the login with `verifyMfa({ mfaToken, code })`. */
export type LoginResult = SignedIn | MfaChallenge

export function isMfaChallenge (answer: unknown): answer is MfaChallenge {
  return (answer as Partial<MfaChallenge> | null)?.mfaRequired === true
}

/** Only the user and the lifetime: whatever else the answer holds is not handed on. */
export function signedIn (answer: { user: User, expiresIn: number }): SignedIn {
  return { mfaRequired: false, user: answer.user, expiresIn: answer.expiresIn }
}
