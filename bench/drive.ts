// The load generator, in a process of its own so that it never shares an event loop with what it measures.
// `node --import tsx bench/drive.ts`, with the Load as JSON on stdin; prints the Measurement as JSON.
import { randomBytes } from 'node:crypto'
import { text } from 'node:stream/consumers'
import autocannon, { type Request } from 'autocannon'
import type { Load, Measurement } from './load.js'

const load = JSON.parse(await text(process.stdin)) as Load

// autocannon rebuilds every request, so the state of a stateful scenario lives here.
function requestsOf ({ scenario, path }: Load): Request[] | undefined {
  if (scenario?.kind === 'refresh') {
    // Each refresh retires its token and its successor goes back into the pool.
    const pool = [...scenario.refreshTokens]
    return [{
      method: 'POST',
      path,
      setupRequest: request => ({ ...request, body: JSON.stringify({ refreshToken: pool.shift() }) }),
      onResponse: (status, body) => {
        if (status === 200) pool.push((JSON.parse(body) as { refreshToken: string }).refreshToken)
      }
    }]
  }
  if (scenario?.kind === 'tokens') {
    // A different access token on every request, more of them than any cache keeps.
    let next = 0
    return [{
      method: 'GET',
      path,
      setupRequest: request => ({ ...request, headers: { ...request.headers, authorization: `Bearer ${scenario.accessTokens[next++ % scenario.accessTokens.length]}` } })
    }]
  }
  if (scenario?.kind === 'bodies') {
    let next = 0
    return [{
      method: 'POST',
      path,
      setupRequest: request => ({ ...request, body: scenario.bodies[next++ % scenario.bodies.length] })
    }]
  }
  if (scenario?.kind === 'register') {
    return [{
      method: 'POST',
      path,
      setupRequest: request => ({ ...request, body: JSON.stringify({ email: `new-${randomBytes(8).toString('hex')}@example.com`, password: scenario.password }) })
    }]
  }
  return undefined
}

const requests = requestsOf(load)
const result = await autocannon({
  url: load.url + load.path,
  method: load.method ?? 'GET',
  headers: { 'content-type': 'application/json', ...load.headers },
  ...(load.body === undefined ? {} : { body: load.body }),
  ...(requests === undefined ? {} : { requests }),
  connections: load.connections,
  ...(load.rate === undefined ? {} : { overallRate: load.rate }),
  duration: load.seconds
})
const measurement: Measurement & { requests: number } = {
  rps: Math.round(result.requests.average),
  p50: result.latency.p50,
  p99: result.latency.p99,
  failures: result.non2xx + result.errors + result.timeouts,
  requests: result.requests.total
}
process.stdout.write(JSON.stringify(measurement))
