// `npm run bench`: the service against reference servers, same machine, same run; writes docs/benchmarks.md.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import pg from 'pg'
import { freePort } from '../test/helpers/net.js'
import { measure, warmThenMeasure, type Load, type Measurement } from './load.js'
import { startServer, type Server } from './processes.js'
import { machineDescription, renderReport, writeReport, type Row } from './report.js'

const seconds = Number(process.env.BENCH_SECONDS ?? 10)
const serverUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres'
const root = join(import.meta.dirname, '..')
const password = 'correct horse battery staple'

async function withClient<T> (url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try { return await work(client) } finally { await client.end() }
}

async function post (url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`)
  return response
}

// One client hammering one account from one address is what the abuse limits exist to stop;
// here it is the point, so they are raised out of the way (the limiter itself still runs).
const unlimited = {
  MAX_SESSIONS_PER_USER: '1000',
  ...Object.fromEntries(['DEFAULT', 'LOGIN_IP', 'LOGIN_ACCOUNT', 'REGISTER', 'REFRESH', 'VERIFY']
    .map(name => [`RATE_LIMIT_${name}`, '9999999/1']))
}

// A database of the benchmark's own, dropped at the end.
const databaseName = `auth_bench_${randomBytes(4).toString('hex')}`
await withClient(serverUrl, client => client.query(`CREATE DATABASE ${databaseName}`))
const databaseUrl = Object.assign(new URL(serverUrl), { pathname: `/${databaseName}` }).toString()
const servers: Server[] = []

try {
  const service = await startServer([join(root, 'dist', 'server.js')], {
    DATABASE_URL: databaseUrl,
    AUTH_SECRET: randomBytes(48).toString('base64url'),
    LOG_LEVEL: 'warn',
    ...unlimited,
    ...JSON.parse(process.env.BENCH_SERVICE_ENV ?? '{}')
  }, await freePort(), '/ready')
  servers.push(service)

  const email = 'bench@example.com'
  const { user } = await (await post(`${service.url}/auth/register`, { email, password })).json() as { user: { id: string } }
  const login = async () => await (await post(`${service.url}/auth/login`, { email, password })).json() as { accessToken: string, refreshToken: string }
  const { accessToken } = await login()
  const cookieLogin = await post(`${service.url}/auth/login`, { email, password, transport: 'cookie' })
  const cookie = cookieLogin.headers.getSetCookie().map(c => c.split(';')[0]).join('; ')
  // Each refresh retires its token: a pool of sessions circulates, every successor going back
  // in (autocannon clears a connection's context after each request, so state lives here).
  const refreshTokens: string[] = []
  for (let i = 0; i < 80; i++) refreshTokens.push((await login()).refreshToken)

  const reference = async (kind: string) => {
    const server = await startServer(['--import', 'tsx', join(root, 'bench', 'references.ts'), kind], { DATABASE_URL: databaseUrl, BENCH_USER_ID: user.id }, await freePort(), '/ready')
    servers.push(server)
    return server
  }
  const [jwtRef, selectRef, argonRef] = [await reference('jwt'), await reference('jwt-select'), await reference('argon2')]
  const referenceToken = async (server: Server) => ((await (await fetch(`${server.url}/token`)).json()) as { token: string }).token
  const jwtLoad = { url: jwtRef.url, path: '/hello', headers: { authorization: `Bearer ${await referenceToken(jwtRef)}` } }
  const selectLoad = { url: selectRef.url, path: '/hello', headers: { authorization: `Bearer ${await referenceToken(selectRef)}` } }
  const argonLoad = { url: argonRef.url, method: 'POST' as const, path: '/login', body: JSON.stringify({ password }) }
  let registered = 0

  const scenarios: Array<{ name: string, service: Omit<Load, 'connections' | 'seconds'>, reference: Omit<Load, 'connections' | 'seconds'>, referenceName: string, target?: number }> = [
    { name: 'GET /auth/session', service: { url: service.url, path: '/auth/session', headers: { authorization: `Bearer ${accessToken}` } }, reference: jwtLoad, referenceName: 'JWT', target: 0.85 },
    { name: 'GET /users/me (Bearer)', service: { url: service.url, path: '/users/me', headers: { authorization: `Bearer ${accessToken}` } }, reference: selectLoad, referenceName: 'JWT + SELECT', target: 0.70 },
    { name: 'GET /users/me (cookie)', service: { url: service.url, path: '/users/me', headers: { cookie } }, reference: selectLoad, referenceName: 'JWT + SELECT', target: 0.70 },
    { name: 'POST /auth/login', service: { url: service.url, method: 'POST', path: '/auth/login', body: JSON.stringify({ email, password }) }, reference: argonLoad, referenceName: 'argon2 + sign', target: 0.90 },
    {
      name: 'POST /auth/refresh',
      service: {
        url: service.url,
        path: '/auth/refresh',
        requests: [{
          method: 'POST',
          path: '/auth/refresh',
          setupRequest: request => ({ ...request, body: JSON.stringify({ refreshToken: refreshTokens.shift() }) }),
          onResponse: (status, body) => {
            if (status === 200) refreshTokens.push((JSON.parse(body) as { refreshToken: string }).refreshToken)
          }
        }]
      },
      reference: selectLoad,
      referenceName: 'JWT + SELECT',
      target: 0.40
    },
    {
      name: 'POST /auth/register',
      service: {
        url: service.url,
        path: '/auth/register',
        requests: [{
          method: 'POST',
          path: '/auth/register',
          setupRequest: request => ({ ...request, body: JSON.stringify({ email: `new-${registered++}-${randomBytes(3).toString('hex')}@example.com`, password }) })
        }]
      },
      reference: argonLoad,
      referenceName: 'argon2 + sign'
    }
  ]

  const rows: Row[] = []
  for (const scenario of scenarios) {
    for (const connections of [10, 50]) {
      const ref = await warmThenMeasure({ ...scenario.reference, connections, seconds })
      const own = await warmThenMeasure({ ...scenario.service, connections, seconds })
      rows.push({ name: scenario.name, connections, service: own, reference: ref, referenceName: scenario.referenceName, target: scenario.target })
      console.log(`${scenario.name} @${connections}: ${own.rps} req/s vs ${ref.rps} (${(own.rps / ref.rps).toFixed(2)})`)
    }
  }

  // A login storm at 50 connections while light probes watch the event loop's health.
  const probe = (path: string, headers: Record<string, string> = {}) => measure({ url: service.url, path, headers, connections: 2, seconds })
  const [storm, health, session] = await Promise.all([
    measure({ url: service.url, method: 'POST', path: '/auth/login', body: JSON.stringify({ email, password }), connections: 50, seconds }),
    probe('/health'),
    probe('/auth/session', { authorization: `Bearer ${accessToken}` })
  ]) as [Measurement, Measurement, Measurement]

  const peakRssMb = await service.peakRssMb()
  const pgVersion = await withClient(databaseUrl, async client => (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? '?')
  const report = renderReport({ machine: machineDescription(pgVersion), seconds, rows, storm, health, session, peakRssMb })
  console.log(report)
  await writeReport(join(root, 'docs', 'benchmarks.md'), report)
} finally {
  await Promise.all(servers.map(server => server.stop()))
  await withClient(serverUrl, client => client.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`))
}
