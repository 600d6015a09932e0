// The scaling table of `npm run bench`: how throughput and p99 grow with connections on one instance, and on two
// instances behind deploy/nginx.conf (TLS, Redis for the shared rate limits) on the same PostgreSQL.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startNginx } from '../test/helpers/nginx.js'
import { freePort } from '../test/helpers/net.js'
import { measure, type LoadOf, type Measurement } from './load.js'
import type { Server } from './processes.js'

export const SCALING_CONNECTIONS = [1, 10, 50, 200]

/** A route of the table; `load` gets the base URL of what it drives (one instance, or nginx) and the connections. */
export interface ScalingRoute {
  name: string
  load: (url: string, connections: number) => ReturnType<LoadOf>
}

export interface ScalingRow {
  name: string
  connections: number
  one: Measurement
  two: Measurement
}

export interface ScalingSetup {
  /** Another instance started like the first, with `env` added (the same database, secret and settings). */
  startInstance: (env: Record<string, string>) => Promise<Server>
  routes: ScalingRoute[]
  seconds: number
}

async function measureAll (url: string, { routes, seconds }: ScalingSetup): Promise<Measurement[]> {
  const results: Measurement[] = []
  for (const route of routes) {
    for (const connections of SCALING_CONNECTIONS) results.push(await measure({ ...await route.load(url, connections), connections, seconds }))
  }
  return results
}

/**
 * Each route at each number of connections, once on the benchmark's instance alone (as `npm start` runs it), then
 * through nginx in front of two new instances that share their rate limits through Redis.
 */
export async function measureScaling (first: Server, setup: ScalingSetup): Promise<ScalingRow[]> {
  const one = await measureAll(first.url, setup)
  const work = await mkdtemp(join(tmpdir(), 'auth-bench-nginx-'))
  const shared = { REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', TRUST_PROXY: '127.0.0.1' }
  const [a, b] = [await setup.startInstance(shared), await setup.startInstance(shared)]
  const port = await freePort()
  // Two connections per client (its own, one to an instance), with room to spare.
  const workerConnections = 4 * Math.max(...SCALING_CONNECTIONS)
  const nginx = await startNginx(join(work, 'nginx'), port, [Number(new URL(a.url).port), Number(new URL(b.url).port)], { workerConnections })
  try {
    const two = await measureAll(`https://127.0.0.1:${port}`, setup)
    return setup.routes.flatMap((route, r) => SCALING_CONNECTIONS.map((connections, c) => {
      const index = r * SCALING_CONNECTIONS.length + c
      return { name: route.name, connections, one: one[index] as Measurement, two: two[index] as Measurement }
    }))
  } finally {
    await nginx.stop()
    await Promise.all([a.stop(), b.stop()])
    await rm(work, { recursive: true, force: true })
  }
}

export function renderScaling (rows: ScalingRow[], seconds: number): string {
  const failures = (m: Measurement) => m.failures > 0 ? ` (${m.failures} failures)` : ''
  return [
    `Scaling: one run of ${seconds} s per cell. "One instance": the benchmark's service, as \`npm start\` runs it. "Two behind nginx": two more instances of the same build, behind \`deploy/nginx.conf\` (TLS, keep-alive to the upstreams) with \`REDIS_URL\` for the rate limits, as README "Scaling out" describes, on the same PostgreSQL and the same cores.`,
    '',
    '| Route | Conns | One instance req/s | p99 ms | Two behind nginx req/s | p99 ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(row => `| ${row.name} | ${row.connections} | ${row.one.rps}${failures(row.one)} | ${row.one.p99} | ${row.two.rps}${failures(row.two)} | ${row.two.p99} |`)
  ].join('\n')
}
