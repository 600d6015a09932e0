// Driving a server from a separate load-generator process (bench/drive.ts) and reading back what the report shows.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { text } from 'node:stream/consumers'
import { serverAt } from './processes.js'

export interface Measurement {
  rps: number
  p50: number
  p99: number
  /** Responses that were not 2xx, and connection errors: a benchmark with failures is void. */
  failures: number
  /**
   * CPU time the server used per request, all its threads, when it is a process started here
   * (not through a proxy): steadier than requests per second on a machine whose cores the
   * server shares with the load generator and PostgreSQL.
   */
  cpuMicrosPerRequest?: number
}

/** Scenarios whose every request differs: a refresh token that each answer replaces, another access token, a new email, the next of some bodies. */
export type Scenario =
  | { kind: 'refresh', refreshTokens: string[] }
  | { kind: 'tokens', accessTokens: string[] }
  | { kind: 'register', password: string }
  | { kind: 'bodies', bodies: string[] }

export interface Load {
  url: string
  method?: 'GET' | 'POST'
  path: string
  headers?: Record<string, string>
  body?: string
  connections: number
  /** Requests per second across all connections; without it, as fast as the server answers. */
  rate?: number
  seconds: number
  scenario?: Scenario
}

export async function measure (load: Load): Promise<Measurement> {
  const server = serverAt(load.url)
  const cpuBefore = await server?.cpuMicros()
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'drive.ts')], { stdio: ['pipe', 'pipe', 'inherit'] })
  child.stdin.end(JSON.stringify(load))
  const [output, code] = await Promise.all([text(child.stdout), new Promise(resolve => child.on('exit', resolve))])
  if (code !== 0) throw new Error(`load generator exited with ${String(code)}`)
  const { requests, ...measurement } = JSON.parse(output) as Measurement & { requests: number }
  if (server === undefined || cpuBefore === undefined || requests === 0) return measurement
  return { ...measurement, cpuMicrosPerRequest: Math.round((await server.cpuMicros() - cpuBefore) / requests) }
}

/** What a scenario sends; built anew for every run (a refresh run needs unspent tokens). */
export type LoadOf = () => Promise<Omit<Load, 'connections' | 'seconds'>>

export interface Comparison {
  service: Measurement
  reference: Measurement
  /** The median of the rounds' service/reference ratios. */
  ratio: number
}

/**
 * The service against its reference, in alternating rounds after a short unmeasured warm-up
 * of each (JIT, pools): drift on a shared machine (another process waking up, the CPU's
 * clock) hits both sides alike, and the median round's ratio is reported with its figures.
 */
export async function compare (reference: LoadOf, service: LoadOf, connections: number, seconds: number, rounds: number): Promise<Comparison> {
  for (const loadOf of [reference, service]) await measure({ ...await loadOf(), connections, seconds: Math.min(2, seconds) })
  const results: Comparison[] = []
  for (let round = 0; round < rounds; round++) {
    const ref = await measure({ ...await reference(), connections, seconds })
    const own = await measure({ ...await service(), connections, seconds })
    results.push({ service: own, reference: ref, ratio: own.rps / ref.rps })
  }
  results.sort((a, b) => a.ratio - b.ratio)
  return results[Math.floor(results.length / 2)] as Comparison
}
