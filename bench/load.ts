// Driving a server with autocannon and reducing the result to what the report shows.
import autocannon, { type Request } from 'autocannon'

export interface Measurement {
  rps: number
  p50: number
  p99: number
  /** Responses that were not 2xx, and connection errors: a benchmark with failures is void. */
  failures: number
}

export interface Load {
  url: string
  method?: 'GET' | 'POST'
  path: string
  headers?: Record<string, string>
  body?: string
  connections: number
  seconds: number
  /** Per-request customisation (unique emails, each connection's own refresh token). */
  requests?: Request[]
}

export async function measure (load: Load): Promise<Measurement> {
  const result = await autocannon({
    url: load.url + load.path,
    method: load.method ?? 'GET',
    headers: { 'content-type': 'application/json', ...load.headers },
    ...(load.body === undefined ? {} : { body: load.body }),
    ...(load.requests === undefined ? {} : { requests: load.requests }),
    connections: load.connections,
    duration: load.seconds
  })
  return {
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    failures: result.non2xx + result.errors + result.timeouts
  }
}

/** A short unmeasured run first, so that JIT and pools are warm when the measurement starts. */
export async function warmThenMeasure (load: Load): Promise<Measurement> {
  await measure({ ...load, seconds: Math.min(2, load.seconds) })
  return measure(load)
}
