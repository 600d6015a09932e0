// Cookie mode, for browser apps: the service keeps the tokens in HttpOnly cookies; this client never sees one.
import { accountCalls } from '../account-calls.js'
import type { LoginInput, MfaVerifyInput, PasskeyLoginInput } from '../api-types.js'
import { errorFrom, refusalOf, refusesSession, sessionChanged, type Refusal } from '../errors.js'
import { createHttp, json, millisecondsOption, ok, refreshBudgetOf, sendRefresh, toRequest, type HttpOptions } from '../http.js'
import { isMfaChallenge, signedIn, type LoginResult, type SignedIn } from '../login.js'
import { createSessionEvents, notify, type SessionEndEvent, type SessionEndListener } from '../session-events.js'
import { createRefreshLock } from './refresh-lock.js'
import { openTabChannel } from './tab-channel.js'

// The session a retried call is meant for: the service refuses it (AUTH_SESSION_MISMATCH) when the cookies hold another's.
const SESSION_HEADER = 'x-auth-session-id'

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
  const lock = createRefreshLock(name, locks, millisecondsOption('lockTimeoutMs', options.lockTimeoutMs, 10_000))
  const refreshTimeoutMs = refreshBudgetOf(options.refreshTimeoutMs)
  // Whether this tab has told of the session's end: once per session, however many calls fail.
  let ended = false
  // Sessions started or ended since a call was sent, in this tab or another, counted: the
  // answer to a call sent before (a 401 of the session that a logout ended) says nothing of
  // the current one, and the call must not be sent again as the new session. Another tab's
  // change counts from when this tab hears of it, never from the time it was stamped with:
  // the tabs share only the wall clock, which can be stepped (regression: stepped between a
  // call and another tab's logout and sign-in, the call was sent again as the next user). A
  // call sent after another tab's change and before this tab heard of it (milliseconds) is
  // taken for the old session's: it fails rather than risk running as someone else. Sign-ins
  // are counted apart: a refusal of the session before one fails its call SESSION_CHANGED
  // rather than with a code that would send a signed-in user to the login screen.
  let sessionChanges = 0
  let signIns = 0
  interface Sent { sessionChanges: number, signIns: number, at: number }
  const sending = (): Sent => ({ sessionChanges, signIns, at: Date.now() })
  const changedSince = (sent: Sent) => sessionChanges !== sent.sessionChanges
  const signedInSince = (sent: Sent) => signIns !== sent.signIns
  let refreshing: Promise<void> | null = null

  // Told of a sign-in in another tab: the cookies hold that session now, perhaps another account's.
  const signInListeners = new Set<() => void | Promise<void>>()
  const channel = openTabChannel(name, message => {
    if (message.type === 'refreshed') lock.heard(message.at)
    else if (message.type === 'signed-in') signedInElsewhere()
    else end(message.event, true)
  })

  function signedInElsewhere (): void {
    begin(true)
    // A copy: a listener added meanwhile waits for the next sign-in.
    for (const listener of [...signInListeners]) notify(listener)
  }

  /** `heard`: another tab did it, and this tab only hears of it. */
  function begin (heard = false): void {
    ended = false
    sessionChanges++
    signIns++
    if (!heard) channel.post({ type: 'signed-in' })
  }

  function end (event: SessionEndEvent, heard = false): void {
    sessionChanges++
    if (ended) return
    ended = true
    if (!heard) channel.post({ type: 'ended', event })
    events.emit(event)
  }

  function started (answer: unknown): LoginResult {
    if (isMfaChallenge(answer)) return answer
    begin()
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
        // it ended meanwhile, and then the refusal is the old session's. A 429 or a 503 is not.
        if (response.status === 401) {
          if (signedInSince(refreshSent)) throw sessionChanged()
          if (!changedSince(refreshSent)) end({ reason: 'refused', code: error.code })
        }
        throw error
      }
      const at = Date.now()
      await lock.record(at)
      channel.post({ type: 'refreshed', at })
    }).finally(() => { refreshing = null })
    return refreshing
  }

  /**
   * Only AUTH_TOKEN_EXPIRED refreshes, once, and the call is retried once; any other 401 that
   * refuses the session ends it. A call sent in an earlier session is neither retried nor ends
   * anything, and its refusal after a sign-in fails it SESSION_CHANGED. This tab knows of a
   * logout or a sign-in in it or its app's other tabs; one it cannot hear of (another app
   * sharing the service's cookies, a browser without BroadcastChannel) the service tells: the
   * retry names the session whose token expired (X-Auth-Session-Id), and the service refuses
   * it when the cookies hold another's (regression: the call was sent again, and ran as the
   * new session).
   *
   * A call that ends the session (`ends`: logout everywhere, the account deleted) is sent, and
   * its answer acted on, holding the lock, as a logout is: its answer clears the cookies, and a
   * sign-in landing while it was under way, in this tab or another, lost its session to it and
   * was told it had ended (regression). The refresh it may need is made between its tries,
   * outside the lock, which the refresh takes and which is not re-entrant.
   */
  async function authed (path: string, init: RequestInit = {}, ends?: SessionEndEvent): Promise<Response> {
    const held = ends === undefined ? <T>(task: () => Promise<T>) => task() : afterRefreshes
    const first = await held(async () => {
      const sent = sending()
      const response = await http.request(path, init)
      const refusal = await refusalOf(response)
      const expired = refusal?.code === 'AUTH_TOKEN_EXPIRED' && !changedSince(sent)
      return { sent, response, refusal, decided: expired ? undefined : decided(sent, response, refusal, false, ends) }
    })
    if (first.decided !== undefined) return first.decided
    const { sent } = first
    await refreshAfter(sent)
    return await held(async () => {
      if (changedSince(sent)) return decided(sent, first.response, first.refusal, false, ends)
      const expiredIn = first.refusal?.sessionId
      const response = await http.request(path, inSession(init, expiredIn))
      return decided(sent, response, await refusalOf(response), expiredIn !== undefined, ends)
    })
  }

  /**
   * What the last answer to a call sent at `sent` means here; `named`: its request named the
   * session it was meant for. A success of a call that `ends` the session ends it, unless a
   * sign-in or a logout came since the call was sent: the session it ended is not this one.
   */
  function decided (sent: Sent, response: Response, refusal: Refusal | undefined, named: boolean, ends: SessionEndEvent | undefined): Response {
    if (refusal !== undefined && (signedInSince(sent) || (named && refusal.code === 'AUTH_SESSION_MISMATCH'))) throw sessionChanged()
    if (changedSince(sent)) return response
    if (refusal === undefined) {
      if (response.ok) {
        ended = false
        if (ends !== undefined) end(ends)
      }
    } else if (refusesSession(refusal.code)) {
      end({ reason: 'refused', code: refusal.code })
    }
    return response
  }

  const open = (path: string, init?: RequestInit) => http.request(path, init)

  /** `init` naming the session the call is meant for, when the service said which. */
  function inSession (init: RequestInit, sessionId: string | undefined): RequestInit {
    if (sessionId === undefined) return init
    const headers = new Headers(init.headers)
    headers.set(SESSION_HEADER, sessionId)
    return { ...init, headers }
  }

  /**
   * A login or logout (or a call that ends the session) waits for the refresh in flight, in this
   * tab or (through the lock) another: that refresh's answer carries the old session's cookies,
   * and landing after the new session's, it would replace them.
   */
  async function afterRefreshes<T> (task: () => Promise<T>): Promise<T> {
    await refreshing?.catch(() => {})
    return await lock.run(task)
  }

  const signIn = (path: string, body: object) => afterRefreshes(async () => started(await json(open(...toRequest({ method: 'POST', path, body })))))

  return {
    ...accountCalls({
      authed,
      open,
      ending: (path, init, event) => ok(authed(path, init, event)),
      // The browser keeps the new access cookie.
      // Its answer set the access cookie that alone counts as fresh: told as a refresh, so that a
      // call whose token expired before it goes out again with that cookie rather than refresh it away.
      reauthenticating: async (path, init) => {
        await ok(authed(path, init))
        const at = Date.now()
        await lock.record(at)
        channel.post({ type: 'refreshed', at })
      }
    }),

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

    /**
     * Calls `listener` when another tab of the app signs in: the cookies, which every tab
     * shares, now hold that session, perhaps another account's, and this tab's calls run as it.
     * Ask who is signed in (`me()`) before showing or doing more. May be async (a promise that
     * rejects is reported as a throw is). Returns the function that stops it.
     */
    onSignIn (listener: () => void | Promise<void>): () => void {
      signInListeners.add(listener)
      return () => { signInListeners.delete(listener) }
    },

    /** Stops listening to the other tabs. */
    close (): void {
      channel.close()
      lock.close()
    }
  }
}

export type AuthClient = ReturnType<typeof createAuthClient>
