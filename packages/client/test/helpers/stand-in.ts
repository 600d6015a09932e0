// A stand-in for the service, for unit tests: sessions opened by a sign-in and ended by logout, in either transport (one
// cookie jar for every tab, or tokens and a device token in the body), rotation with the grace window, the codes the service answers, and a log of the requests.
import { randomBytes } from 'node:crypto'
import type { User } from '../../src/index.js'

export const user: User = {
  id: '0b7e6a52-4f5c-4c1e-9a55-1f6f1c0a5d11',
  email: 'ada@example.com',
  pendingEmail: null,
  username: 'ada',
  role: 'user',
  emailVerified: true,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  profile: { displayName: 'Ada', bio: null, avatarUrl: null }
}

export function errorAnswer (status: number, code: string, headers: Record<string, string> = {}, fields: Record<string, unknown> = {}): Response {
  return Response.json({ statusCode: status, code, error: 'Error', message: `${code} (stand-in)`, ...fields }, { status, headers })
}

/** Waits like a network does: an abort rejects with the signal's reason, as fetch does. */
function wait (ms: number, signal: AbortSignal | null | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) return reject(signal.reason)
    const timer = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => {
      clearTimeout(timer)
      reject(signal.reason)
    }, { once: true })
  })
}

export interface Sent {
  method: string
  path: string
  init: RequestInit
}

/** What a token or a cookie stands for: the session (numbered by login) and the refresh generation that issued it. */
interface Credential {
  session: number
  generation: number
}

/**
 * A token in the body or a header: `access.<session>.<generation>`, or a refresh token in the
 * service's shape, `<session>.<generation>.<mac>` (here the mac is `refresh`).
 */
function credentialOf (token: unknown): Credential | null {
  const match = /^access\.(\d+)\.(\d+)$|^(\d+)\.(\d+)\.refresh$/.exec(typeof token === 'string' ? token : '')
  return match === null ? null : { session: Number(match[1] ?? match[3]), generation: Number(match[2] ?? match[4]) }
}

/**
 * Access tokens are numbered by the refresh generation that issued them; `expire()` makes
 * every token issued so far expired. A sign-in opens a new session (cookies when it asks for
 * them, as the cookie client does; tokens and a device token in the body otherwise), a logout
 * ends the session of the token it presents, and a token of any session but the last one
 * opened is refused.
 * The cookies a request carries are those in the jar when it leaves; an answer's cookies
 * land in the jar when it arrives, as in a browser.
 */
/** The id the stand-in gives session number `session`, as the service names a session in its answers. */
export const sessionIdOf = (session: number) => `00000000-0000-4000-8000-${String(session).padStart(12, '0')}`

export function createStandIn ({ latencyMs = 3, namesSessions = true } = {}) {
  const state = { session: 0, generation: 0, expiredBelow: 0, revoked: false, rotations: 0 }
  const jar: { access: Credential | null, refresh: Credential | null } = { access: null, refresh: null }
  const sent: Sent[] = []
  /** Answers of the test's own, by "METHOD /path". */
  const overrides = new Map<string, (init: RequestInit) => Response | Promise<Response>>()
  /** Extra latency, by "METHOD /path", for the next request only: before the service acts on it. */
  const delays = new Map<string, number>()
  /** Extra latency of the next answer, by "METHOD /path": after the service acted, before its cookies land. */
  const answerDelays = new Map<string, number>()
  // The cookies of the answer being made: acting on a request is synchronous, so one slot will do.
  let landing: { value: Credential | null } | null = null

  const setJar = (value: Credential | null) => { landing = { value } }
  const live = (credential: Credential) => credential.session === state.session && !state.revoked

  /** The session's current tokens: in the jar for a cookie request, in the body for a token request. */
  function issued (inBody: boolean, extra: Record<string, unknown> = {}): Response {
    const current = { session: state.session, generation: state.generation }
    const named = namesSessions ? { sessionId: sessionIdOf(current.session) } : {}
    if (!inBody) {
      setJar(current)
      return Response.json({ ...named, ...extra, expiresIn: 900 })
    }
    const tokens = { accessToken: `access.${current.session}.${current.generation}`, refreshToken: `${current.session}.${current.generation}.refresh`, tokenType: 'Bearer' }
    return Response.json({ ...named, ...tokens, ...extra, expiresIn: 900 })
  }

  function refresh (credential: Credential | null, inBody: boolean): Response {
    if (credential === null) return errorAnswer(401, 'AUTH_REQUIRED')
    if (!live(credential)) return errorAnswer(401, 'AUTH_REFRESH_REVOKED')
    if (credential.generation === state.generation) {
      state.generation++
      state.rotations++
    } else if (credential.generation !== state.generation - 1) {
      state.revoked = true
      return errorAnswer(401, 'AUTH_REFRESH_REUSED')
    }
    // Within the grace window the previous token gets the same successor.
    return issued(inBody)
  }

  function asUser (credential: Credential | null, key: string, meant: string | null): Response {
    if (credential === null) return errorAnswer(401, 'AUTH_REQUIRED')
    if (namesSessions && meant !== null && meant !== sessionIdOf(credential.session)) return errorAnswer(401, 'AUTH_SESSION_MISMATCH')
    if (credential.generation < state.expiredBelow) return errorAnswer(401, 'AUTH_TOKEN_EXPIRED', {}, namesSessions ? { sessionId: sessionIdOf(credential.session) } : {})
    if (!live(credential)) return errorAnswer(401, 'AUTH_SESSION_REVOKED')
    return key === 'GET /users/me' ? Response.json(user) : new Response(null, { status: 204 })
  }

  async function fetch (url: string, init: RequestInit = {}): Promise<Response> {
    const { pathname } = new URL(url)
    const key = `${init.method ?? 'GET'} ${pathname}`
    sent.push({ method: init.method ?? 'GET', path: pathname, init })
    const cookies = { ...jar }
    const body = (typeof init.body === 'string' ? JSON.parse(init.body) : {}) as Record<string, unknown>
    const bearer = new Headers(init.headers).get('authorization')?.replace(/^Bearer /, '')
    const access = bearer === undefined ? cookies.access : credentialOf(bearer)
    const inBody = body.refreshToken !== undefined
    const refreshCredential = inBody ? credentialOf(body.refreshToken) : cookies.refresh
    const delay = delays.get(key) ?? 0
    delays.delete(key)
    await wait(latencyMs + delay, init.signal)
    const override = overrides.get(key)
    if (override !== undefined) return override(init)
    const answer = act(key, body, access, refreshCredential, inBody, bearer === undefined, new Headers(init.headers).get('x-auth-session-id'))
    const landed = landing
    landing = null
    const answerDelay = answerDelays.get(key) ?? 0
    answerDelays.delete(key)
    if (answerDelay > 0) await wait(answerDelay, init.signal)
    if (landed !== null) Object.assign(jar, { access: landed.value, refresh: landed.value })
    return answer
  }

  function act (key: string, body: Record<string, unknown>, access: Credential | null, refreshCredential: Credential | null, inBody: boolean, byCookie: boolean, meant: string | null): Response {
    switch (key) {
      // Any sign-in, whatever its proof: the second step and a passkey are taken as proven.
      case 'POST /auth/login':
      case 'POST /auth/mfa/verify':
      case 'POST /auth/passkeys/login/verify':
        // As the service's body schema: a device token sent must be one in shape.
        if (body.deviceToken !== undefined && !/^[A-Za-z0-9_-]{43}$/.test(String(body.deviceToken))) return errorAnswer(400, 'VALIDATION_FAILED')
        Object.assign(state, { session: state.session + 1, generation: 0, expiredBelow: 0, revoked: false })
        if (body.transport === 'cookie') return issued(false, { user })
        // The device token sent, or a new one at a device's first sign-in.
        return issued(true, { user, deviceToken: body.deviceToken ?? randomBytes(32).toString('base64url') })
      case 'POST /auth/refresh':
        return refresh(refreshCredential, inBody)
      case 'POST /auth/logout':
        if (refreshCredential?.session === state.session) state.revoked = true
        if (!inBody) setJar(null)
        return new Response(null, { status: 204 })
      // Every session of the user ends (here, the one), and the answer clears the cookies.
      case 'POST /auth/logout-all':
      case 'DELETE /users/me': {
        const answer = asUser(access, key, meant)
        if (answer.ok) {
          state.revoked = true
          if (byCookie) setJar(null)
        }
        return answer
      }
      default:
        return asUser(access, key, meant)
    }
  }

  /**
   * Acts on a request as `fetch` does, but its answer's cookies land only when `land` is
   * called: a browser stores them as the answer arrives, never for one lost on the way.
   */
  async function unlanded (url: string, init: RequestInit = {}): Promise<{ answer: Response, land: () => void }> {
    const before = { ...jar }
    const answer = await fetch(url, init)
    const landed = { ...jar }
    Object.assign(jar, before)
    return { answer, land: () => { Object.assign(jar, landed) } }
  }

  return {
    fetch,
    unlanded,
    state,
    jar,
    sent,
    overrides,
    delays,
    answerDelays,
    /** Every access token issued so far is expired from now on. */
    expire: () => { state.expiredBelow = state.generation + 1 },
    /** The session is revoked (another device ended it, an admin, a password reset). */
    revoke: () => { state.revoked = true },
    /** How many requests went to "METHOD /path". */
    count: (key: string) => sent.filter(request => `${request.method} ${request.path}` === key).length
  }
}

export type StandIn = ReturnType<typeof createStandIn>
