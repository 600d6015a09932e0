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
export const DEFAULT_REFRESH_BUDGET_MS = 8000

// Pauses between tries that found no network: a dropped connection or a tunnel is often
// back within seconds, and the tries stop at the budget anyway.
const RETRY_PAUSES_MS = [250, 500, 1000, 2000]

/**
 * Sends `POST /auth/refresh` (the token in `body`, or the cookie) until an answer comes,
 * for at most `budgetMs`. The service may have rotated the token and its answer been lost:
 * within its grace window (`REFRESH_REUSE_GRACE_SECONDS`, 10 s by default) the same token
 * gets the same successor; presented later, it is taken for a stolen one and the session
 * ends. So, within a budget under that window:
 * - a try that reaches nobody (NETWORK_ERROR) is made again after a short pause;
 * - a try without an answer at half the budget gets a second beside it, the first still
 *   awaited: a slow answer is the successor all the same (abandoning it lost it, regression),
 *   and a connection that swallowed the answer must not hold the refresh to the end;
 * - a success wins; a refusal (429, 503, …) waits for the other try under way, which may
 *   yet succeed (regression: a quick 503 threw away a successor on its way);
 * - the try left behind is not cut off: in a browser it may carry the cookie the winner just
 *   set, and rotate again, and its own cookie must then land too (regression: cut off, it left
 *   the browser one token behind). The budget ends it.
 * The answer comes back whole (its body read within the budget: a body that stalled held the
 * refresh for ever, regression); TIMEOUT or NETWORK_ERROR once the budget is spent.
 */
export async function sendRefresh (http: Http, budgetMs: number, body?: { refreshToken: string }): Promise<Response> {
  const [path, init] = toRequest({ method: 'POST', path: '/auth/refresh', body })
  const tries = new Set<AbortController>()
  // Timers and performance.now() run on the monotonic clock: the wall clock set back (an NTP
  // step, the user) kept the tries going for an hour (regression).
  const deadline = performance.now() + budgetMs
  const timeout = setTimeout(() => {
    for (const controller of tries) controller.abort(new DOMException('The refresh took too long', 'TimeoutError'))
  }, budgetMs)
  let next: ReturnType<typeof setTimeout> | undefined
  try {
    return await new Promise<Response>((resolve, reject) => {
      let sent = 0
      let refusal: Response | undefined
      // Once settled, a try left behind only finishes: it never starts another.
      let settled = false
      const settle = (outcome: () => void) => { settled = true; clearTimeout(next); outcome() }
      const send = () => {
        sent++
        const controller = new AbortController()
        tries.add(controller)
        next = tries.size === 1 ? setTimeout(send, budgetMs / 2) : undefined
        http.request(path, { ...init, signal: controller.signal }).then(whole).then(response => {
          tries.delete(controller)
          if (settled) return
          if (!response.ok && tries.size > 0) {
            refusal ??= response
            return
          }
          settle(() => { resolve(response.ok ? response : refusal ?? response) })
        }, (error: unknown) => {
          tries.delete(controller)
          if (settled || tries.size > 0) return
          clearTimeout(next)
          const kept = refusal
          if (kept !== undefined) return settle(() => { resolve(kept) })
          const pause = RETRY_PAUSES_MS[Math.min(sent - 1, RETRY_PAUSES_MS.length - 1)] ?? 0
          // A pause that would end at or past the budget leaves no time for a try.
          if (!isAuthError(error, 'NETWORK_ERROR') || performance.now() + pause >= deadline) return settle(() => { reject(error) })
          next = setTimeout(send, pause)
        })
      }
      send()
    })
  } finally {
    clearTimeout(next)
    // A try left behind keeps the budget's end; with none, nothing is left to end.
    if (tries.size === 0) clearTimeout(timeout)
  }
}

/** The answer with its body read (under the try's signal): callers then read it from memory. */
async function whole (response: Response): Promise<Response> {
  const text = await response.text().catch((error: unknown) => { throw noAnswer(error) })
  return new Response(response.status === 204 ? null : text, { status: response.status, statusText: response.statusText, headers: response.headers })
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
