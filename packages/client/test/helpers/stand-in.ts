// A stand-in for the service's cookie mode, for unit tests: one cookie jar for every tab, rotation with the
// grace window, the codes the service answers, and a log of the requests.
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

export function errorAnswer (status: number, code: string, headers: Record<string, string> = {}): Response {
  return Response.json({ statusCode: status, code, error: 'Error', message: `${code} (stand-in)` }, { status, headers })
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

/**
 * Access tokens are numbered by the refresh generation that issued them; `expire()` makes
 * every token issued so far expired. The cookies a request carries are those in the jar
 * when it leaves; an answer's cookies land in the jar when it arrives, as in a browser.
 */
export function createStandIn ({ latencyMs = 3 } = {}) {
  const state = { generation: 0, expiredBelow: 0, revoked: false, rotations: 0 }
  const jar: { access: number | null, refresh: number | null } = { access: null, refresh: null }
  const sent: Sent[] = []
  /** Answers of the test's own, by "METHOD /path". */
  const overrides = new Map<string, (init: RequestInit) => Response | Promise<Response>>()
  /** Extra latency, by "METHOD /path", for the next request only. */
  const delays = new Map<string, number>()

  const setJar = (value: number | null) => { jar.access = value; jar.refresh = value }

  function refresh (token: number | null): Response {
    if (token === null) return errorAnswer(401, 'AUTH_REQUIRED')
    if (state.revoked) return errorAnswer(401, 'AUTH_REFRESH_REVOKED')
    if (token === state.generation) {
      state.generation++
      state.rotations++
    } else if (token !== state.generation - 1) {
      state.revoked = true
      return errorAnswer(401, 'AUTH_REFRESH_REUSED')
    }
    // Within the grace window the previous token gets the same successor.
    setJar(state.generation)
    return Response.json({ expiresIn: 900 })
  }

  function asUser (token: number | null, key: string): Response {
    if (token === null) return errorAnswer(401, 'AUTH_REQUIRED')
    if (token < state.expiredBelow) return errorAnswer(401, 'AUTH_TOKEN_EXPIRED')
    if (state.revoked) return errorAnswer(401, 'AUTH_SESSION_REVOKED')
    return key === 'GET /users/me' ? Response.json(user) : new Response(null, { status: 204 })
  }

  async function fetch (url: string, init: RequestInit = {}): Promise<Response> {
    const { pathname } = new URL(url)
    const key = `${init.method ?? 'GET'} ${pathname}`
    sent.push({ method: init.method ?? 'GET', path: pathname, init })
    const cookies = { ...jar }
    const delay = delays.get(key) ?? 0
    delays.delete(key)
    await wait(latencyMs + delay, init.signal)
    const override = overrides.get(key)
    if (override !== undefined) return override(init)
    switch (key) {
      case 'POST /auth/login':
        Object.assign(state, { generation: 0, expiredBelow: 0, revoked: false })
        setJar(0)
        return Response.json({ user, expiresIn: 900 })
      case 'POST /auth/refresh':
        return refresh(cookies.refresh)
      case 'POST /auth/logout':
        setJar(null)
        return new Response(null, { status: 204 })
      default:
        return asUser(cookies.access, key)
    }
  }

  return {
    fetch,
    state,
    jar,
    sent,
    overrides,
    delays,
    /** Every access token issued so far is expired from now on. */
    expire: () => { state.expiredBelow = state.generation + 1 },
    /** The session is revoked (another device ended it, an admin, a password reset). */
    revoke: () => { state.revoked = true },
    /** How many requests went to "METHOD /path". */
    count: (key: string) => sent.filter(request => `${request.method} ${request.path}` === key).length
  }
}

export type StandIn = ReturnType<typeof createStandIn>
