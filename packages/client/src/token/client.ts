// Token mode, for mobile and server clients: tokens in the body, kept in a storage of the app's choosing.
import { accountCalls } from '../account-calls.js'
import type { LoginInput, LoginTokenAnswer, MfaVerifyInput, PasskeyLoginInput, ReauthenticatedTokenAnswer, RefreshTokenAnswer } from '../api-types.js'
import { AuthError, errorFrom, isAuthError, refusalOf, refusesSession, sessionChanged } from '../errors.js'
import { createHttp, json, millisecondsOption, ok, refreshBudgetOf, sendRefresh, toRequest, type HttpOptions } from '../http.js'
import { isMfaChallenge, signedIn, type LoginResult } from '../login.js'
import { createSessionEvents, type SessionEndEvent, type SessionEndListener } from '../session-events.js'
import { memoryStorage, type StoredTokens, type TokenStorage } from './storage.js'

export interface TokenClientOptions extends HttpOptions {
  /** Memory by default: pass secure storage to keep the session across restarts. */
  storage?: TokenStorage
  /** Refresh this long before the access token expires (at most a quarter of its life). Default 30 s. */
  refreshLeewaySeconds?: number
  /**
   * How long a refresh may take, its tries included: one that reaches nobody is made again
   * after a short pause, one unanswered after three quarters of it is abandoned for one more
   * (see `sendRefresh`). Default 8 s: keep it under the service's `REFRESH_REUSE_GRACE_SECONDS`
   * (10 s by default).
   */
  refreshTimeoutMs?: number
  /**
   * How long a sign-in, sign-out or refresh waits for the storage to be done with the call
   * before it: past it, it fails (STORAGE_TIMEOUT) rather than hang behind a storage call that
   * never settles (a keychain prompt left open, a native bridge that lost its callback). It
   * never goes ahead of that call. Default 30 s.
   */
  storageTimeoutMs?: number
  /** The clock, in ms since the epoch (tests move it). Default `Date.now`. */
  now?: () => number
}

// A device token as the service makes it: 32 random bytes, base64url. Nothing else is sent or
// kept: the service's body schema refuses any other, and would fail every sign-in with it.
const DEVICE_TOKEN = /^[A-Za-z0-9_-]{43}$/

const deviceTokenOf = (value: unknown): string | null => typeof value === 'string' && DEVICE_TOKEN.test(value) ? value : null

/** Once `previous` settled: STORAGE_TIMEOUT if it takes longer than `ms`. */
function settledWithin (previous: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new AuthError('STORAGE_TIMEOUT', 'The token storage is still busy with an earlier call', 0)) }, ms)
    const done = () => {
      clearTimeout(timer)
      resolve()
    }
    previous.then(done, done)
  })
}

export function createTokenClient (options: TokenClientOptions) {
  const http = createHttp(options)
  const storage = options.storage ?? memoryStorage()
  const now = options.now ?? Date.now
  const leewayMs = (options.refreshLeewaySeconds ?? 30) * 1000
  const refreshTimeoutMs = refreshBudgetOf(options.refreshTimeoutMs)
  const storageTimeoutMs = millisecondsOption('storageTimeoutMs', options.storageTimeoutMs, 30_000)
  const events = createSessionEvents()
  let refreshing: Promise<StoredTokens> | null = null

  const toStored = (answer: RefreshTokenAnswer): StoredTokens => ({
    accessToken: answer.accessToken,
    refreshToken: answer.refreshToken,
    expiresIn: answer.expiresIn,
    expiresAt: now() + answer.expiresIn * 1000
  })
  const due = (tokens: StoredTokens) => now() >= tokens.expiresAt - Math.min(leewayMs, tokens.expiresIn * 250)

  async function current (): Promise<StoredTokens> {
    const tokens = await storage.get()
    if (tokens === null) throw new AuthError('AUTH_REQUIRED', 'Not signed in', 401)
    return tokens
  }

  // Sign-ins and sign-outs of this client, counted: an answer about the tokens kept before one
  // must neither be kept nor end anything. Storage may be asynchronous, so what one decision
  // reads and writes runs in its turn: a sign-in's write never falls between a refresh's
  // check and its own write (regression: the previous user's rotated tokens replaced the new
  // user's). A turn never starts before the one ahead of it is done, however long that takes:
  // one that would wait longer than `storageTimeoutMs` fails instead (STORAGE_TIMEOUT), so a
  // storage call that never settles fails what comes after it rather than hanging it (a turn
  // that went ahead anyway let a late write of the previous user land last).
  let sessionChanges = 0
  // Sign-ins alone: a refusal of the session before one fails its call SESSION_CHANGED.
  let signIns = 0
  let turns: Promise<unknown> = Promise.resolve()
  function inTurn<T> (task: () => Promise<T>): Promise<T> {
    const ahead = turns
    const run = settledWithin(ahead, storageTimeoutMs).then(task)
    // The next turn waits for this one's task, or, if this one gave up, for the one it waited for.
    turns = run.catch(() => ahead)
    return run
  }

  /** The session the tokens belong to: a refresh token is `<session id>.<generation>.<mac>`. */
  const sessionOf = (tokens: StoredTokens) => tokens.refreshToken.split('.', 1)[0]

  /** Forgets the tokens and tells of the session's end: run in a turn. */
  async function forget (event: SessionEndEvent): Promise<void> {
    sessionChanges++
    await storage.clear()
    events.emit(event)
  }

  /**
   * A call that ended the session of `tokens` succeeded (a logout, logout everywhere, the account
   * deleted): its tokens are forgotten, rotated meanwhile or not; a session signed in since keeps
   * its own (regression: a late answer wiped them).
   */
  function endedSessionOf (tokens: StoredTokens | null, event: SessionEndEvent): Promise<void> {
    return inTurn(async () => {
      const kept = await storage.get()
      if (tokens !== null && kept !== null && sessionOf(kept) === sessionOf(tokens)) await forget(event)
    })
  }

  /**
   * Runs `task` in its turn if storage still holds the tokens `from` that a call or a refresh
   * started from, and nobody signed in or out since `since`. If not, they were rotated, or the
   * session ended or was replaced meanwhile: the answer is about tokens no longer kept, and
   * must neither clear nor overwrite those kept now.
   */
  async function ifStillHeld (from: StoredTokens, since: number, task: () => Promise<void>): Promise<void> {
    await inTurn(async () => {
      if (sessionChanges === since && (await storage.get())?.refreshToken === from.refreshToken) await task()
    })
  }

  /**
   * One refresh at a time: every call that needs one waits for the same. Its tokens are handed
   * on only if kept: a refresh answered after a logout (or a logout and a new login) hands on
   * what the storage holds instead, and a caller finds nothing (AUTH_REQUIRED) or another
   * session's tokens (SESSION_CHANGED), not a token of the session that ended (regression:
   * `accessToken()` resolved with one after the logout).
   */
  function refresh (stale: StoredTokens): Promise<StoredTokens> {
    refreshing ??= (async () => {
      const since = sessionChanges
      const tokens = await current()
      // Already rotated by another client on the same storage: its successor will do. Or a
      // reauthentication's token kept since, the only one that counts as fresh: a refresh would
      // put a stale one in its place, so the call that expired goes out with it instead.
      if (tokens.refreshToken !== stale.refreshToken || tokens.accessToken !== stale.accessToken) return tokens
      const response = await sendRefresh(http, refreshTimeoutMs, { refreshToken: tokens.refreshToken })
      if (!response.ok) {
        const error = await errorFrom(response)
        if (response.status === 401) await ifStillHeld(tokens, since, () => forget({ reason: 'refused', code: error.code }))
        throw error
      }
      let next = toStored(await json<RefreshTokenAnswer>(response))
      let stored = false
      await ifStillHeld(tokens, since, async () => {
        // A reauthentication's token kept while this refresh was under way: it stays, beside the
        // new refresh token (the refresh's own would take the place of the only fresh one).
        const kept = await storage.get()
        if (kept !== null && kept.refreshToken === tokens.refreshToken && kept.accessToken !== tokens.accessToken) next = { ...kept, refreshToken: next.refreshToken }
        await storage.set(next)
        stored = true
      })
      return stored ? next : await current()
    })().finally(() => { refreshing = null })
    return refreshing
  }

  /**
   * The tokens a call begun with `tokens` goes out with: refreshed first when due. A refresh that
   * finds another session's tokens kept (a logout, then a new login, meanwhile) fails the call
   * (SESSION_CHANGED): sent, it would run as whoever signed in since (regression: it did).
   */
  async function upToDate (tokens: StoredTokens): Promise<StoredTokens> {
    if (!due(tokens)) return tokens
    const successor = await refresh(tokens)
    if (sessionOf(successor) !== sessionOf(tokens)) throw sessionChanged()
    return successor
  }

  const withBearer = (init: RequestInit, tokens: StoredTokens): RequestInit => {
    const headers = new Headers(init.headers)
    headers.set('authorization', `Bearer ${tokens.accessToken}`)
    return { ...init, headers }
  }

  /**
   * Refreshes shortly before `exp`, or once on AUTH_TOKEN_EXPIRED, and retries once; any other
   * 401 that refuses the session ends it, if the tokens it refused are still the ones kept. A
   * call whose session was replaced meanwhile (a logout, then a new login) fails
   * SESSION_CHANGED, whatever the service answered: sent again, it would run as whoever signed
   * in since, and its refusal says nothing of the session kept now. Resolves with the tokens
   * the call went out with, too.
   */
  async function send (path: string, init: RequestInit = {}): Promise<{ response: Response, tokens: StoredTokens }> {
    const since = sessionChanges
    const signInsBefore = signIns
    const begun = await current()
    // A sign-in while the storage was read: what it read may be the new session's tokens, and
    // the call was made before it (regression: sent as the new session, with a slow storage).
    if (signIns !== signInsBefore) throw sessionChanged()
    try {
      const early = due(begun)
      let tokens = await upToDate(begun)
      let response = await http.request(path, withBearer(init, tokens))
      let refusal = await refusalOf(response)
      if (refusal?.code === 'AUTH_TOKEN_EXPIRED' && !early) {
        const successor = await refresh(tokens)
        if (sessionOf(successor) !== sessionOf(tokens)) throw sessionChanged()
        tokens = successor
        response = await http.request(path, withBearer(init, tokens))
        refusal = await refusalOf(response)
      }
      const code = refusal?.code
      if (code === undefined) return { response, tokens }
      if (await signedInSince(begun, signInsBefore)) throw sessionChanged()
      if (refusesSession(code)) await ifStillHeld(tokens, since, () => forget({ reason: 'refused', code }))
      return { response, tokens }
    } catch (error) {
      if (isAuthError(error) && error.status === 401 && !isAuthError(error, 'SESSION_CHANGED') && await signedInSince(begun, signInsBefore)) throw sessionChanged()
      throw error
    }
  }

  const authed = async (path: string, init?: RequestInit): Promise<Response> => (await send(path, init)).response

  /** Whether another session than that of `tokens` was signed in since `before` (here, or by another client of the storage). */
  async function signedInSince (tokens: StoredTokens, before: number): Promise<boolean> {
    if (signIns !== before) return true
    const kept = await storage.get()
    return kept !== null && sessionOf(kept) !== sessionOf(tokens)
  }

  const open = (path: string, init?: RequestInit) => http.request(path, init)

  /**
   * The device token kept, when the storage keeps one. The new-device notice is best effort: a
   * storage that fails to read it signs in without it, as a new device, rather than not at all.
   */
  async function keptDevice (): Promise<string | null> {
    try {
      return deviceTokenOf(await storage.getDevice?.())
    } catch {
      return null
    }
  }

  /** Keeps the device token a sign-in answered, when it is one and not the one `kept`; best effort, as `keptDevice`. */
  async function keepDevice (answered: unknown, kept: string | null): Promise<void> {
    const deviceToken = deviceTokenOf(answered)
    if (deviceToken === null || deviceToken === kept) return
    try {
      await storage.setDevice?.(deviceToken)
    } catch {
      // The next sign-in sends the one kept before, or none: a notice too many, no sign-in refused.
    }
  }

  /**
   * Signs in through `path` with the device token kept, and keeps the tokens and the device
   * token answered. Sent only once the storage is free (else STORAGE_TIMEOUT, and no session
   * opened); a session whose tokens the storage could not take after all is ended at the
   * service rather than left open until it expires.
   */
  async function signIn (path: string, input: object): Promise<LoginResult> {
    // Read in a turn: after the storage call before it, so the sign-in is sent only once the storage is free.
    const device = await inTurn(keptDevice)
    const body = device === null ? input : { ...input, deviceToken: device }
    const answer = await json(open(...toRequest({ method: 'POST', path, body })))
    if (isMfaChallenge(answer)) return answer
    const tokens = answer as Partial<LoginTokenAnswer>
    if (typeof tokens.accessToken !== 'string' || typeof tokens.refreshToken !== 'string') {
      // The service took this for a browser (Origin or Sec-Fetch-Site sent) and set cookies.
      throw new AuthError('UNEXPECTED_RESPONSE', 'No tokens in the answer: in a browser, use createAuthClient', 200)
    }
    const { refreshToken } = tokens
    try {
      await inTurn(async () => {
        sessionChanges++
        signIns++
        await storage.set(toStored(tokens as LoginTokenAnswer))
        // An older service answers none: the one kept stays.
        await keepDevice(tokens.deviceToken, device)
      })
    } catch (error) {
      await ok(open(...toRequest({ method: 'POST', path: '/auth/logout', body: { refreshToken } }))).catch(() => {})
      throw error
    }
    return signedIn(tokens as LoginTokenAnswer)
  }

  return {
    ...accountCalls({
      authed,
      open,
      async ending (path, init, event) {
        const { response, tokens } = await send(path, init)
        await ok(response)
        await endedSessionOf(tokens, event)
      },
      async reauthenticating (path, init) {
        const since = sessionChanges
        const { response, tokens } = await send(path, init)
        const { accessToken, expiresIn } = await json<ReauthenticatedTokenAnswer>(response)
        // In place of the access token kept for the same session, beside whatever refresh token a
        // refresh under way meanwhile left (regression: that refresh's stale token took its place,
        // or it found the refresh token changed and kept nothing); a sign-in or sign-out since keeps what it left.
        await inTurn(async () => {
          const kept = await storage.get()
          if (sessionChanges === since && kept !== null && sessionOf(kept) === sessionOf(tokens)) await storage.set({ ...kept, accessToken, expiresIn, expiresAt: now() + expiresIn * 1000 })
        })
      }
    }),

    /** Signs in and keeps the tokens in the storage. May answer a second-factor challenge instead. */
    async login (input: LoginInput): Promise<LoginResult> {
      return await signIn('/auth/login', input)
    },

    /** Completes a login that answered `mfaRequired` (401 `MFA_CODE_INVALID`, `MFA_CHALLENGE_EXPIRED`). */
    async verifyMfa (input: MfaVerifyInput): Promise<LoginResult> {
      return await signIn('/auth/mfa/verify', input)
    },

    /** Signs in with the passkey assertion made from `passkeyLoginOptions()` and keeps the tokens: no second step follows (401 `PASSKEY_*`). */
    async loginWithPasskey (input: PasskeyLoginInput): Promise<LoginResult> {
      return await signIn('/auth/passkeys/login/verify', input)
    },

    /** Ends this session at the service, then forgets its tokens (see `endedSessionOf`). */
    async logout (): Promise<void> {
      const tokens = await storage.get()
      if (tokens === null) return
      await ok(open(...toRequest({ method: 'POST', path: '/auth/logout', body: { refreshToken: tokens.refreshToken } })))
      await endedSessionOf(tokens, { reason: 'logout' })
    },

    /** A valid access token, refreshed if due: for the app's own resource servers. */
    async accessToken (): Promise<string> {
      return (await upToDate(await current())).accessToken
    },

    /** fetch for any route of the service, with the Bearer token; `path` starts with `/`. A stream body cannot be retried. */
    fetch: (path: string, init?: RequestInit): Promise<Response> => authed(path, init),

    /** Calls `listener` when the session ends; returns the function that stops it. */
    onSessionEnd: (listener: SessionEndListener): (() => void) => events.on(listener)
  }
}

export type TokenClient = ReturnType<typeof createTokenClient>
