// The account calls, the same in both modes: only how a call is authenticated differs.
import type {
  ActivityList, ActivityQuery, ChangePasswordInput, CurrentPasswordInput, DeleteMeInput, ForgotPasswordInput, Me, MfaPasskeyOptionsInput, Passkey, PasskeyCreationOptionsAnswer, PasskeyRequestOptionsAnswer, ReauthenticateInput,
  RecoveryCodesAnswer, RegisterInput, RegisterPasskeyInput, RenamePasskeyInput, ResetPasswordInput, SessionList, SessionListQuery, TotpConfirmInput,
  TotpEnrolmentAnswer, UpdateMeInput, User, VerifyEmailInput
} from './api-types.js'
import { json, ok, toRequest, type Call } from './http.js'
import type { SessionEndEvent } from './session-events.js'

export interface Senders {
  /** A call on behalf of the signed-in user (refreshes and retries once on AUTH_TOKEN_EXPIRED). */
  authed: (path: string, init?: RequestInit) => Promise<Response>
  /** A call that needs no session. */
  open: (path: string, init?: RequestInit) => Promise<Response>
  /**
   * A call that ends the session it is made in (logout everywhere, the account deleted): once
   * it succeeded, the session ends here, if it is still the one the call was made in.
   */
  ending: (path: string, init: RequestInit, event: SessionEndEvent) => Promise<void>
  /**
   * A reauthentication: once it succeeded, the new access token it answers (in the body, or in
   * its cookie) is the one calls go out with, since only it counts as freshly authenticated.
   */
  reauthenticating: (path: string, init: RequestInit) => Promise<void>
}

export function accountCalls ({ authed, open, ending, reauthenticating }: Senders) {
  const asUser = (call: Call) => authed(...toRequest(call))
  const anyone = (call: Call) => open(...toRequest(call))

  return {
    /** Creates an account; does not sign in (409 `USER_EXISTS`). */
    async register (input: RegisterInput): Promise<User> {
      return (await json<{ user: User }>(anyone({ method: 'POST', path: '/auth/register', body: input }))).user
    },
    /** The signed-in user, their profile and their second factors. */
    me: (): Promise<Me> => json<Me>(asUser({ method: 'GET', path: '/users/me' })),
    /** Changes username, email (pending until confirmed by mail; needs fresh authentication and `currentPassword`) or profile fields; `null` clears a profile field. */
    updateMe: (changes: UpdateMeInput): Promise<Me> => json<Me>(asUser({ method: 'PATCH', path: '/users/me', body: changes })),
    /**
     * Proves the password or a factor again on this session (after a 403
     * `REAUTHENTICATION_REQUIRED`, whose `methods` say which), and takes the new access token it
     * answers, the fresh one; then retry the refused call.
     */
    reauthenticate: (input: ReauthenticateInput): Promise<void> => reauthenticating(...toRequest({ method: 'POST', path: '/auth/reauthenticate', body: input })),
    /** Starts setting up an authenticator app: its secret, otpauth URI and QR code (SVG). Needs the current password (403 `INVALID_CURRENT_PASSWORD`), fresh authentication and a verified address (403 `EMAIL_NOT_VERIFIED`). */
    enrolTotp: (input: CurrentPasswordInput): Promise<TotpEnrolmentAnswer> => json<TotpEnrolmentAnswer>(asUser({ method: 'POST', path: '/auth/mfa/totp', body: input })),
    /** Finishes it with a first code; answers the ten recovery codes, shown this once (400 `MFA_CODE_INVALID`). */
    confirmTotp: (input: TotpConfirmInput): Promise<RecoveryCodesAnswer> => json<RecoveryCodesAnswer>(asUser({ method: 'POST', path: '/auth/mfa/totp/confirm', body: input })),
    /** Removes the authenticator app, with the recovery codes unless a passkey remains. Needs fresh authentication. */
    removeTotp: (): Promise<void> => ok(asUser({ method: 'DELETE', path: '/auth/mfa/totp' })),
    /** Ten new recovery codes; the old ones die. With an app or a passkey (409 `MFA_NOT_ENABLED` with neither). Needs the current password (403 `INVALID_CURRENT_PASSWORD`) and fresh authentication. */
    regenerateRecoveryCodes: (input: CurrentPasswordInput): Promise<RecoveryCodesAnswer> => json<RecoveryCodesAnswer>(asUser({ method: 'POST', path: '/auth/mfa/recovery-codes', body: input })),
    /** Options for `navigator.credentials.create()` to register a passkey. Needs the current password (403 `INVALID_CURRENT_PASSWORD`), fresh authentication and a verified address (403 `EMAIL_NOT_VERIFIED`); 409 `PASSKEY_LIMIT_REACHED` at 20 passkeys. */
    passkeyRegistrationOptions: (input: CurrentPasswordInput): Promise<PasskeyCreationOptionsAnswer> => json<PasskeyCreationOptionsAnswer>(asUser({ method: 'POST', path: '/auth/passkeys/register/options', body: input })),
    /** Stores the passkey just made; from now on the account has a second factor. Needs fresh authentication; 409 `PASSKEY_LIMIT_REACHED` past 20 passkeys. */
    async registerPasskey (input: RegisterPasskeyInput): Promise<Passkey> {
      return (await json<{ passkey: Passkey }>(asUser({ method: 'POST', path: '/auth/passkeys/register/verify', body: input }))).passkey
    },
    /** The user's passkeys, oldest first. */
    async passkeys (): Promise<Passkey[]> {
      return (await json<{ items: Passkey[] }>(asUser({ method: 'GET', path: '/auth/passkeys' }))).items
    },
    async renamePasskey (id: string, input: RenamePasskeyInput): Promise<Passkey> {
      return (await json<{ passkey: Passkey }>(asUser({ method: 'PATCH', path: `/auth/passkeys/${encodeURIComponent(id)}`, body: input }))).passkey
    },
    /** Removes a passkey. Needs fresh authentication. */
    removePasskey: (id: string): Promise<void> => ok(asUser({ method: 'DELETE', path: `/auth/passkeys/${encodeURIComponent(id)}` })),
    /**
     * Options for `navigator.credentials.get()` to sign in with a passkey and nothing else (no
     * credential listed: the browser offers this site's passkeys, also as autofill with
     * `mediation: "conditional"`); then `loginWithPasskey({ response })`.
     */
    passkeyLoginOptions: (): Promise<PasskeyRequestOptionsAnswer> => json<PasskeyRequestOptionsAnswer>(anyone({ method: 'POST', path: '/auth/passkeys/login/options' })),
    /**
     * Options for `navigator.credentials.get()` with the account's passkeys, for a login that
     * answered `mfaRequired` with `webauthn` among its `methods`; then `verifyMfa({ mfaToken, webauthn })`.
     */
    mfaPasskeyOptions: (input: MfaPasskeyOptionsInput): Promise<PasskeyRequestOptionsAnswer> => json<PasskeyRequestOptionsAnswer>(anyone({ method: 'POST', path: '/auth/mfa/webauthn/options', body: input })),
    /** Options for `navigator.credentials.get()` to reauthenticate with a passkey: then `reauthenticate({ webauthn })`. */
    reauthenticationPasskeyOptions: (): Promise<PasskeyRequestOptionsAnswer> => json<PasskeyRequestOptionsAnswer>(asUser({ method: 'POST', path: '/auth/reauthenticate/webauthn/options' })),
    /** The user's live sessions, most recently used first. */
    sessions: (query: SessionListQuery = {}): Promise<SessionList> => json<SessionList>(asUser({ method: 'GET', path: '/auth/sessions', query })),
    /** What happened to the account, newest first: sign-ins and failed ones, changes by the user or an admin. */
    activity: (query: ActivityQuery = {}): Promise<ActivityList> => json<ActivityList>(asUser({ method: 'GET', path: '/users/me/activity', query })),
    /** Ends one of the user's sessions (404 `NOT_FOUND` for anyone else's). For this client's own session call `logout()`: ended here, it is told to `onSessionEnd` only when a call is refused for it. */
    revokeSession: (id: string): Promise<void> => ok(asUser({ method: 'DELETE', path: `/auth/sessions/${encodeURIComponent(id)}` })),
    /** Every other session ends; this one stays (403 `INVALID_CURRENT_PASSWORD`). */
    changePassword: (input: ChangePasswordInput): Promise<void> => ok(asUser({ method: 'POST', path: '/auth/password/change', body: input })),
    /** Mails a new verification link (to the pending address if an email change is pending). */
    resendVerificationEmail: (): Promise<void> => ok(asUser({ method: 'POST', path: '/auth/email/resend' })),
    /** Always succeeds (the answer tells nothing about the account) unless rate limited. */
    forgotPassword: (input: ForgotPasswordInput): Promise<void> => ok(anyone({ method: 'POST', path: '/auth/password/forgot', body: input })),
    /** Sets a new password with the mailed token; every session of the account ends. */
    resetPassword: (input: ResetPasswordInput): Promise<void> => ok(anyone({ method: 'POST', path: '/auth/password/reset', body: input })),
    /** Verifies an address (or completes an email change) with the mailed token. */
    verifyEmail: (input: VerifyEmailInput): Promise<void> => ok(anyone({ method: 'POST', path: '/auth/email/verify', body: input })),
    /** Ends every session of the user, this one included. */
    logoutAll: (): Promise<void> => ending(...toRequest({ method: 'POST', path: '/auth/logout-all' }), { reason: 'logout' }),
    /** Deletes the account, its sessions and data (403 `INVALID_CURRENT_PASSWORD`). */
    deleteAccount: (input: DeleteMeInput): Promise<void> => ending(...toRequest({ method: 'DELETE', path: '/users/me', body: input }), { reason: 'account-deleted' })
  }
}

export type AccountCalls = ReturnType<typeof accountCalls>
