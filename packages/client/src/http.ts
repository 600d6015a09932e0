// Requests to the service: its URL, JSON bodies, and answers turned into values or AuthErrors.
import { AuthError, errorFrom, isAuthError } from './errors.js'

export type Fetch = (input: string, init: RequestInit) => Promise<Response>

export interface HttpOptions {
  /** The service's root URL, e.g. `https://auth.example.com` (its routes start at `/auth`, `/users`). */
  baseUrl: string
  /** A fetch of your own (instrumentation, tests); the global one by default. */
  fetch?: Fetch
}

export interface Call {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE'
  path: string
  body?: unknown
  query?: Record<string, string | number | undefined>
}

export interface Http {
  /** Sends to a path of the service; rejects only when no answer came (NETWORK_ERROR, TIMEOUT). */
  request: (path: string, init?: RequestInit) => Promise<Response>
}

/** `defaults` go with every request (cookie mode sends credentials). */
export function createHttp ({ baseUrl, fetch }: HttpOptions, defaults: RequestInit = {}): Http {
  const root = baseUrl.replace(/\/+$/, '')
  // Called through globalThis at request time: a browser refuses a detached `fetch`, and a
  // fetch replaced after the client was made is still the one used.
  const send: Fetch = fetch ?? ((input, init) => globalThis.fetch(input, init))
  return {
    async request (path, init = {}) {
      // Only the service's own paths: a token or credentials never travel elsewhere.
      if (!path.startsWith('/') || path.startsWith('//')) throw new TypeError(`Not a path of the service: ${path}`)
      try {
        return await send(root + path, { ...defaults, ...init })
      } catch (error) {
        throw noAnswer(error)
      }
    }
  }
}

function noAnswer (error: unknown): unknown {
  const name = (error as { name?: unknown } | null)?.name
  // The caller's own abort stays what fetch makes it.
  if (name === 'AbortError') return error
  if (name === 'TimeoutError') return new AuthError('TIMEOUT', 'The service did not answer in time', 0, { cause: error })
  return new AuthError('NETWORK_ERROR', 'The service could not be reached', 0, { cause: error })
}

/** What a refresh may take, its tries included: under the service's default grace window (10 s), with room for the clocks and the trip. */
const DEFAULT_REFRESH_BUDGET_MS = 8000

// Pauses between tries that found no network or a gateway without its upstream: a dropped
// connection, a tunnel or an upstream is often back within seconds, and the tries stop at the
// budget anyway. Each is drawn between half and one and a half times these, so that the
// clients that lost one outage do not all come back in the same instant.
const RETRY_PAUSES_MS = [250, 500, 1000, 2000]

// A gateway's answers for an upstream that failed or did not answer in time, which may well
// have rotated the token first. The service's own 503 (load shed, the database out) and 500
// wrote nothing to retry for, and a retry would only add load to a service in trouble.
const UPSTREAM_LOST = new Set([502, 504])

// The first try of a refresh may take this share of the budget before it is abandoned for
// another, which gets the rest: time for a slow answer, and for a try after a swallowed one.
const FIRST_TRY_SHARE = 0.75

/**
 * Sends `POST /auth/refresh` (the token in `body`, or the cookie) until an answer comes,
 * within `budgetMs`. The service may have rotated the token and its answer been lost:
 * within its grace window (`REFRESH_REUSE_GRACE_SECONDS`, 10 s by default) the same token
 * gets the same successor; presented later, it is taken for a stolen one and the session
 * ends. So, within a budget under that window, one try at a time (a try left running could
 * land its cookies after a later sign-in):
 * - a try that reaches nobody (NETWORK_ERROR), or whose answer is a gateway's 502 or 504 (its
 *   upstream may have rotated the token first), is made again after a short pause
 *   (regressions: one retry at once, and a connection down for a second lost the session; a
 *   gateway's 502 was the end of the refresh, and the next one, past the window, of the session);
 * - a try unanswered after three quarters of the budget is abandoned for one more, which
 *   gets the rest: a connection may have swallowed the answer;
 * - the answer comes back whole, its body read within its try's time (regression: a body that
 *   stalled held the refresh for ever).
 * Once the budget is spent: the last 502 or 504, or TIMEOUT or NETWORK_ERROR.
 */
export async function sendRefresh (http: Http, budgetMs: number, body?: { refreshToken: string }): Promise<Response> {
  const [path, init] = toRequest({ method: 'POST', path: '/auth/refresh', body })
  // performance.now() and timers run on the monotonic clock: the wall clock set back (an NTP
  // step, the user) kept the tries going for an hour (regression).
  const deadline = performance.now() + budgetMs
  for (let tries = 0; ; tries++) {
    const left = deadline - performance.now()
    let response: Response
    try {
      response = await answerWithin(http, path, init, tries === 0 ? left * FIRST_TRY_SHARE : left)
    } catch (error) {
      if (isAuthError(error, 'TIMEOUT') && performance.now() < deadline - 1) continue
      if (isAuthError(error, 'NETWORK_ERROR') && await pausedBefore(tries + 1, deadline)) continue
      throw error
    }
    if (!UPSTREAM_LOST.has(response.status) || !await pausedBefore(tries + 1, deadline)) return response
  }
}

/** Waits the pause before try number `next` (from 0): false, at once, when no time would be left for it. */
async function pausedBefore (next: number, deadline: number): Promise<boolean> {
  const pause = (RETRY_PAUSES_MS[Math.min(next - 1, RETRY_PAUSES_MS.length - 1)] ?? 0) * (0.5 + Math.random())
  if (performance.now() + pause >= deadline - 1) return false
  await new Promise(resolve => setTimeout(resolve, pause))
  return true
}

// Answers that carry no body (the Response constructor refuses one).
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304])

/** One try's answer with its body read, within `ms`: TIMEOUT past it, whatever a fetch makes of the abort. */
async function answerWithin (http: Http, path: string, init: RequestInit, ms: number): Promise<Response> {
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort() }, Math.max(1, Math.ceil(ms)))
  try {
    const response = await http.request(path, { ...init, signal: controller.signal })
    const text = await response.text()
    return new Response(NULL_BODY_STATUSES.has(response.status) ? null : text, { status: response.status, statusText: response.statusText, headers: response.headers })
  } catch (error) {
    if (controller.signal.aborted) throw new AuthError('TIMEOUT', 'The service did not answer in time', 0, { cause: error })
    throw error instanceof AuthError ? error : noAnswer(error)
  } finally {
    clearTimeout(timer)
  }
}

/** A refresh budget as the clients take it (see `millisecondsOption`). */
export function refreshBudgetOf (ms: number | undefined): number {
  return millisecondsOption('refreshTimeoutMs', ms, DEFAULT_REFRESH_BUDGET_MS)
}

/** A duration option: a whole number of milliseconds a timer can hold, or `fallback` when left out; a RangeError otherwise. */
export function millisecondsOption (name: string, ms: number | undefined, fallback: number): number {
  if (ms === undefined) return fallback
  if (!Number.isInteger(ms) || ms < 1 || ms > 2_147_483_647) throw new RangeError(`${name} must be a whole number of milliseconds from 1 to 2147483647, not ${ms}`)
  return ms
}

/** The path and init of a JSON call. */
export function toRequest ({ method, path, body, query }: Call): [string, RequestInit] {
  const search = new URLSearchParams()
  for (const [name, value] of Object.entries(query ?? {})) if (value !== undefined) search.set(name, String(value))
  const url = search.toString() === '' ? path : `${path}?${search.toString()}`
  if (body === undefined) return [url, { method }]
  return [url, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }]
}

/** The JSON body of a successful answer; an AuthError for any other. */
export async function json<T> (pending: Response | Promise<Response>): Promise<T> {
  const response = await pending
  if (!response.ok) throw await errorFrom(response)
  try {
    return await response.json() as T
  } catch (error) {
    throw new AuthError('UNEXPECTED_RESPONSE', 'The answer is not JSON', response.status, { cause: error })
  }
}

/** Nothing but success (204, 202): an AuthError for any other answer. */
export async function ok (pending: Response | Promise<Response>): Promise<void> {
  const response = await pending
  if (!response.ok) throw await errorFrom(response)
}
