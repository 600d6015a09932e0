// Cookie mode, for browser apps: the service keeps the tokens in HttpOnly cookies; this client never sees one.
import { accountCalls } from '../account-calls.js'
import type { LoginInput, MfaVerifyInput, PasskeyLoginInput } from '../api-types.js'
import { errorFrom, unauthorizedCode } from '../errors.js'
import { createHttp, json, ok, refreshBudgetOf, sendRefresh, toRequest, type HttpOptions } from '../http.js'
import { isMfaChallenge, signedIn, type LoginResult, type SignedIn } from '../login.js'
import { createSessionEvents, type SessionEndEvent, type SessionEndListener } from '../session-events.js'
import { createRefreshLock } from './refresh-lock.js'
import { openTabChannel } from './tab-channel.js'

export interface AuthClientOptions extends HttpOptions {
  /** Names the lock and the channel the app's tabs share. Default: one per `baseUrl`. */
  name?: string
  /** How long a tab waits for another tab's refresh before refreshing itself. Default 10 s. */
  lockTimeoutMs?: number
  /**
   * How long a refresh may take, its tries included: one that reaches nobody is made again
   * after a short pause, one unanswered after three quarters of it is abandoned for one more
   * (see `sendRefresh`). Default 8 s: keep it under the service's `REFRESH_REUSE_GRACE_SECONDS`
   * (10 s by default).
   */
  refreshTimeoutMs?: number
  /** The Web Locks API: `navigator.locks` by default; `null` to do without. */
  locks?: LockManager | null
}

export function createAuthClient (options: AuthClientOptions) {
  const name = options.name ?? `auth-client ${options.baseUrl}`
  // The cookies go with every call, to another origin too (the app's origin is in CORS_ORIGINS).
  const http = createHttp(options, { credentials: 'include' })
  const events = createSessionEvents()
  const locks = options.locks !== undefined ? options.locks : (globalThis.navigator?.locks ?? null)
  const lock = createRefreshLock(name, locks, options.lockTimeoutMs ?? 10_000)
  const refreshTimeoutMs = refreshBudgetOf(options.refreshTimeoutMs)
  // Whether this tab has told of the session's end: once per session, however many calls fail.
  let ended = false
  // Whether a session started or ended since a call was sent, in this tab or another: the
  // answer to a call sent before (a 401 of the session that a logout ended) says nothing of
  // the current one, and the call must not be sent again as the new session. This tab's own
  // changes are counted, in order; another tab's are heard later, with when they happened
  // there: a call sent by then may have left with the new session's cookies. The same
  // millisecond counts as before, for a call whose cookies were of the old session.
  let ownChanges = 0
  let heardChangeAt = 0
  interface Sent { ownChanges: number, at: number }
  const sending = (): Sent => ({ ownChanges, at: Date.now() })
  const changedSince = (sent: Sent) => ownChanges !== sent.ownChanges || heardOfChangeSince(sent)
  let refreshing: Promise<void> | null = null

  /**
   * Whether the last change heard of another tab came after `sent`. Tabs share only the wall clock,
   * which can be set back (an NTP step, the user): a stamp ahead of the clock is from before
   * that, so it came before a call sent since, whose own stamp is not ahead (regression: with
   * the clock set back an hour, every call took a sign-in from before for one after it, and
   * no tab refreshed for that hour; the refresh lock ignores such stamps likewise).
   */
  function heardOfChangeSince (sent: Sent): boolean {
    const now = Date.now()
    return heardChangeAt >= sent.at && (heardChangeAt <= now || sent.at > now)
  }

  const channel = openTabChannel(name, message => {
    if (message.type === 'refreshed') lock.heard(message.at)
    else if (message.type === 'signed-in') begin(message.at)
    else end(message.event, message.at)
  })

  /** `heardAt`: when another tab did it, which this tab only hears of. */
  function changed (heardAt: number | undefined): void {
    if (heardAt === undefined) ownChanges++
    // One stamped ahead of the clock gives way to any since (see `heardOfChangeSince`).
    else heardChangeAt = heardChangeAt > Date.now() ? heardAt : Math.max(heardChangeAt, heardAt)
  }

  function begin (heardAt?: number): void {
    ended = false
    changed(heardAt)
  }

  function end (event: SessionEndEvent, heardAt?: number): void {
    changed(heardAt)
    if (ended) return
    ended = true
    if (heardAt === undefined) channel.post({ type: 'ended', event, at: Date.now() })
    events.emit(event)
  }

  function started (answer: unknown): LoginResult {
    if (isMfaChallenge(answer)) return answer
    begin()
    channel.post({ type: 'signed-in', at: Date.now() })
    return signedIn(answer as SignedIn)
  }

  /**
   * One refresh for every call of this tab that needs it, and for every tab (the lock): a
   * tab granted the lock after another tab refreshed, since its call was sent, just retries.
   */
  function refreshAfter (sent: Sent): Promise<void> {
    refreshing ??= lock.run(async () => {
      if (await lock.lastRefreshAt() > sent.at) return
      const refreshSent = sending()
      const response = await sendRefresh(http, refreshTimeoutMs)
      if (!response.ok) {
        const error = await errorFrom(response)
        // Refused (revoked, expired, reused): the session is over, unless another has started or
        // it ended meanwhile. A 429 or a 503 is not.
        if (response.status === 401 && !changedSince(refreshSent)) end({ reason: 'refused', code: error.code })
        throw error
      }
      const at = Date.now()
      await lock.record(at)
      channel.post({ type: 'refreshed', at })
    }).finally(() => { refreshing = null })
    return refreshing
  }

  /**
   * Only AUTH_TOKEN_EXPIRED refreshes, once, and the call is retried once; any other 401 ends
   * the session. A call sent in an earlier session (a logout, a sign-in since, in any tab) is
   * neither retried nor ends anything: retried, it would run as whoever signed in since.
   */
  async function authed (path: string, init: RequestInit = {}): Promise<Response> {
    const sent = sending()
    let response = await http.request(path, init)
    if (!changedSince(sent) && await unauthorizedCode(response) === 'AUTH_TOKEN_EXPIRED') {
      await refreshAfter(sent)
      if (changedSince(sent)) return response
      response = await http.request(path, init)
    }
    if (changedSince(sent)) return response
    const code = await unauthorizedCode(response)
    if (code === undefined) {
      if (response.ok) ended = false
    } else if (code !== 'AUTH_TOKEN_EXPIRED') {
      end({ reason: 'refused', code })
    }
    return response
  }

  const open = (path: string, init?: RequestInit) => http.request(path, init)

  /**
   * A login or logout waits for the refresh in flight, in this tab or (through the lock) another:
   * that refresh's answer carries the old session's cookies, and landing after the new
   * session's, it would replace them.
   */
  async function afterRefreshes<T> (task: () => Promise<T>): Promise<T> {
    await refreshing?.catch(() => {})
    return await lock.run(task)
  }

  const signIn = (path: string, body: object) => afterRefreshes(async () => started(await json(open(...toRequest({ method: 'POST', path, body })))))

  return {
    ...accountCalls({ authed, open, ended: event => { end(event) } }),

    /** Signs in: the service sets the cookies. May answer a second-factor challenge instead. */
    async login (input: LoginInput): Promise<LoginResult> {
      // `transport: "cookie"` holds even where the service cannot tell a browser (tests, webviews).
      return await signIn('/auth/login', { ...input, transport: 'cookie' })
    },

    /** Completes a login that answered `mfaRequired` (401 `MFA_CODE_INVALID`, `MFA_CHALLENGE_EXPIRED`). */
    async verifyMfa (input: MfaVerifyInput): Promise<LoginResult> {
      // Asks for cookies as login does: verify answers in the transport it is asked for.
      return await signIn('/auth/mfa/verify', { ...input, transport: 'cookie' })
    },

    /** Signs in with the passkey assertion made from `passkeyLoginOptions()`: no second step follows (401 `PASSKEY_*`). */
    async loginWithPasskey (input: PasskeyLoginInput): Promise<LoginResult> {
      return await signIn('/auth/passkeys/login/verify', { ...input, transport: 'cookie' })
    },

    /** Ends this session and clears the cookies, in every tab. */
    async logout (): Promise<void> {
      await afterRefreshes(() => ok(open('/auth/logout', { method: 'POST' })))
      end({ reason: 'logout' })
    },

    /**
     * fetch for any route of the service, with the cookies, refreshed and retried once on
     * AUTH_TOKEN_EXPIRED. `path` starts with `/`. A body is sent twice at most: a stream cannot be.
     * Rejects with an AuthError when the refresh fails.
     */
    fetch: (path: string, init?: RequestInit): Promise<Response> => authed(path, init),

    /** Calls `listener` when the session ends, in this tab or another; returns the function that stops it. */
    onSessionEnd: (listener: SessionEndListener): (() => void) => events.on(listener),

    /** Stops listening to the other tabs. */
    close (): void {
      channel.close()
      lock.close()
    }
  }
}

export type AuthClient = ReturnType<typeof createAuthClient>
