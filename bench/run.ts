// `npm run bench`: the service against reference servers, same machine, same run; writes docs/benchmarks.md.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { withClient } from '../test/helpers/database.js'
import { freePort } from '../test/helpers/net.js'
import { NGINX, nginxInstalled } from '../test/helpers/nginx.js'
import { nodeFlags } from '../test/helpers/program.js'
import { compare, measure, type LoadOf } from './load.js'
import { startServer, type Server } from './processes.js'
import { machineDescription, renderReport, writeReport, type Row } from './report.js'
import { measureScaling, renderScaling } from './scaling.js'

const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const serverUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres'
const root = join(import.meta.dirname, '..')
const password = 'correct horse battery staple'

async function post (url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`)
  return response
}

// As `npm start` and the container's CMD run the service (the Dockerfile test holds them to the same list).
const SERVICE_NODE_FLAGS = [...nodeFlags, ...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(flag => flag !== '')]

// One client hammering one account from one address is what the rate limits exist to stop;
// here it is the point, so they are raised out of the way (the limiter itself still runs).
// The per-user session cap stays at its default: each account here keeps at most 10 sessions.
const unlimited = {
  ...Object.fromEntries(['DEFAULT', 'LOGIN_IP', 'LOGIN_ACCOUNT', 'REGISTER', 'REFRESH', 'VERIFY']
    .map(name => [`RATE_LIMIT_${name}`, '9999999/1']))
}

// BENCH_ONLY (a regular expression over scenario names) is for working on one route; such a run is not written down.
const only = process.env.BENCH_ONLY === undefined ? null : new RegExp(process.env.BENCH_ONLY)

// The scaling table ends the run and needs nginx: a machine without it is told now, not after
// a quarter of an hour of measurements that would then be lost.
if ((only === null || only.test('scaling')) && !nginxInstalled()) {
  console.error(`npm run bench: the scaling table runs two instances behind nginx, and ${NGINX} is missing (Debian: apt-get install nginx); BENCH_ONLY can leave the scaling out, in a run that is only printed`)
  process.exit(1)
}

// A database of the benchmark's own, dropped at the end.
const databaseName = `auth_bench_${randomBytes(4).toString('hex')}`
await withClient(serverUrl, client => client.query(`CREATE DATABASE ${databaseName}`))
const databaseUrl = Object.assign(new URL(serverUrl), { pathname: `/${databaseName}` }).toString()
const servers: Server[] = []

try {
  const serviceEnv: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    AUTH_SECRET: randomBytes(48).toString('base64url'),
    // One origin for every instance (tokens name it as issuer and audience), whatever port each listens on.
    PUBLIC_URL: 'http://bench.localhost',
    LOG_LEVEL: 'warn',
    ...unlimited,
    ...JSON.parse(process.env.BENCH_SERVICE_ENV ?? '{}')
  }
  const startInstance = async (env: Record<string, string> = {}) =>
    await startServer([...SERVICE_NODE_FLAGS, join(root, 'dist', 'server.js')], { ...serviceEnv, ...env }, await freePort(), '/ready')
  const service = await startInstance()
  servers.push(service)

  // Accounts of their own for the token checks, the logins and the refreshes, so that no
  // scenario's logins evict another's sessions.
  const register = async (name: string) => {
    const email = `${name}@example.com`
    const { user } = await (await post(`${service.url}/auth/register`, { email, password })).json() as { user: { id: string } }
    return { email, password, id: user.id }
  }
  const login = async (account: { email: string }) => await (await post(`${service.url}/auth/login`, { email: account.email, password })).json() as { accessToken: string, refreshToken: string }
  const reader = await register('reader')
  // Logins spread over more accounts than connections: one identifier's attempts take their
  // turns (the login throttle), and real logins come from many users at once.
  const loginAccounts = await Promise.all(Array.from({ length: 200 }, async (_, i) => await register(`login-${i}`)))
  const refreshAccounts = await Promise.all(Array.from({ length: 40 }, async (_, i) => await register(`refresh-${i}`)))
  const { accessToken, refreshToken } = await login(reader)
  const cookieLogin = await post(`${service.url}/auth/login`, { email: reader.email, password, transport: 'cookie' })
  const cookie = cookieLogin.headers.getSetCookie().map(c => c.split(';')[0]).join('; ')
  // Every refresh spends its token, and a run ends with tokens in flight: each run gets its
  // own, spread over the refresh accounts (fewer than 10 each: none is evicted).
  const refreshTokens = async (count: number) => {
    const perAccount = Math.ceil(count / refreshAccounts.length)
    const accounts = refreshAccounts.flatMap(account => Array<typeof account>(perAccount).fill(account)).slice(0, count)
    return await Promise.all(accounts.map(async account => (await login(account)).refreshToken))
  }
  // 2000 access tokens (one session refreshed again and again): more than the verification cache keeps.
  const accessTokens: string[] = []
  for (let token = refreshToken; accessTokens.length < 2000;) {
    const refreshed = await (await post(`${service.url}/auth/refresh`, { refreshToken: token })).json() as { accessToken: string, refreshToken: string }
    accessTokens.push(refreshed.accessToken)
    token = refreshed.refreshToken
  }

  const reference = async (kind: string) => {
    const server = await startServer(['--import', 'tsx', join(root, 'bench', 'references.ts'), kind], { DATABASE_URL: databaseUrl, BENCH_USER_ID: reader.id }, await freePort(), '/ready')
    servers.push(server)
    return server
  }
  const [bareRef, jwtRef, selectRef, updateRef, argonRef, insertRef] = [await reference('bare'), await reference('jwt'), await reference('jwt-select'), await reference('jwt-update'), await reference('argon2'), await reference('argon2-insert')]
  const referenceToken = async (server: Server) => ((await (await fetch(`${server.url}/token`)).json()) as { token: string }).token
  const fixed = (load: Awaited<ReturnType<LoadOf>>): LoadOf => async () => load
  const bareLoad = fixed({ url: bareRef.url, path: '/hello' })
  const jwtLoad = fixed({ url: jwtRef.url, path: '/hello', headers: { authorization: `Bearer ${await referenceToken(jwtRef)}` } })
  const selectLoad = fixed({ url: selectRef.url, path: '/hello', headers: { authorization: `Bearer ${await referenceToken(selectRef)}` } })
  // Driven as the service's refresh is: each answer's refresh token goes back into the pool.
  const updateLoad = (connections: number): LoadOf => async () => {
    const { tokens } = await (await fetch(`${updateRef.url}/refresh-tokens?count=${3 * connections}`)).json() as { tokens: string[] }
    return { url: updateRef.url, method: 'POST', path: '/refresh', scenario: { kind: 'refresh', refreshTokens: tokens } }
  }
  const argonLoad = fixed({ url: argonRef.url, method: 'POST', path: '/login', body: JSON.stringify({ password }) })
  const insertLoad = fixed({ url: insertRef.url, method: 'POST', path: '/register', scenario: { kind: 'register', password } })
  const registerLoad = fixed({ url: service.url, method: 'POST', path: '/auth/register', scenario: { kind: 'register', password } })
  const bearer = { authorization: `Bearer ${accessToken}` }
  const logins = (url: string) => ({ url, method: 'POST', path: '/auth/login', scenario: { kind: 'bodies', bodies: loginAccounts.map(account => JSON.stringify({ email: account.email, password })) } }) as const

  // Targets: docs/benchmarks.md, "Targets". `tail`: the most p99 may be, as a multiple of p50, at 10 connections.
  const scenarios: Array<{ name: string, service: (connections: number) => LoadOf, reference: (connections: number) => LoadOf, referenceName: string, target?: number, tail?: number }> = [
    { name: 'GET /health', service: () => fixed({ url: service.url, path: '/health' }), reference: () => bareLoad, referenceName: 'bare Fastify', target: 0.70 },
    { name: 'GET /auth/session', service: () => fixed({ url: service.url, path: '/auth/session', headers: bearer }), reference: () => jwtLoad, referenceName: 'JWT', target: 0.85 },
    { name: 'GET /auth/session (a new token each time)', service: () => fixed({ url: service.url, path: '/auth/session', scenario: { kind: 'tokens', accessTokens } }), reference: () => jwtLoad, referenceName: 'JWT' },
    { name: 'GET /users/me (Bearer)', service: () => fixed({ url: service.url, path: '/users/me', headers: bearer }), reference: () => selectLoad, referenceName: 'JWT + SELECT', target: 0.85 },
    { name: 'GET /users/me (cookie)', service: () => fixed({ url: service.url, path: '/users/me', headers: { cookie } }), reference: () => selectLoad, referenceName: 'JWT + SELECT', target: 0.85 },
    { name: 'POST /auth/login', service: () => fixed(logins(service.url)), reference: () => argonLoad, referenceName: 'argon2 + sign', target: 0.95 },
    {
      name: 'POST /auth/refresh',
      service: connections => async () => ({ url: service.url, method: 'POST', path: '/auth/refresh', scenario: { kind: 'refresh', refreshTokens: await refreshTokens(3 * connections) } }),
      reference: updateLoad,
      referenceName: 'JWT + UPDATE + sign',
      target: 0.80
    },
    { name: 'POST /auth/register', service: () => registerLoad, reference: () => insertLoad, referenceName: 'argon2 hash + INSERT + sign', target: 0.90, tail: 2.5 },
    { name: 'POST /auth/register (against a login)', service: () => registerLoad, reference: () => argonLoad, referenceName: 'argon2 + sign', target: 0.85 }
  ]

  const rows: Row[] = []
  for (const scenario of scenarios.filter(s => only === null || only.test(s.name))) {
    for (const connections of [10, 50]) {
      const { service: own, reference: ref, ratio } = await compare(scenario.reference(connections), scenario.service(connections), connections, seconds, rounds)
      rows.push({ name: scenario.name, connections, service: own, reference: ref, ratio, referenceName: scenario.referenceName, target: scenario.target, tail: connections === 10 ? scenario.tail : undefined })
      console.log(`${scenario.name} @${connections}: ${own.rps} req/s vs ${ref.rps} (${ratio.toFixed(2)})${own.failures + ref.failures > 0 ? ` failures ${own.failures}/${ref.failures}` : ''}, service peak RSS so far ${await service.peakRssMb()} MB`)
    }
  }

  // A login storm at 50 connections while two light probes (20 requests/s each) watch the event loop's health.
  const stormSeconds = seconds * rounds
  const probe = (path: string, headers: Record<string, string> = {}) => measure({ url: service.url, path, headers, connections: 1, rate: 20, seconds: stormSeconds })
  const [storm, health, session] = only !== null && !only.test('login storm')
    ? []
    : await Promise.all([
      measure({ ...logins(service.url), connections: 50, seconds: stormSeconds }),
      probe('/health'),
      probe('/auth/session', bearer)
    ])

  const scaling = only !== null && !only.test('scaling')
    ? undefined
    : await measureScaling(service, {
      startInstance,
      seconds,
      routes: [
        // A new login per cell: the run has outlived the first access token by now.
        { name: 'GET /users/me (Bearer)', load: async url => ({ url, path: '/users/me', headers: { authorization: `Bearer ${(await login(reader)).accessToken}` } }) },
        { name: 'POST /auth/refresh', load: async (url, connections) => ({ url, method: 'POST', path: '/auth/refresh', scenario: { kind: 'refresh', refreshTokens: await refreshTokens(connections + 20) } }) },
        { name: 'POST /auth/login', load: async url => logins(url) }
      ]
    })

  const peakRssMb = await service.peakRssMb()
  const referenceRssMb = Object.fromEntries(await Promise.all(Object.entries({ bare: bareRef, jwt: jwtRef, 'jwt-select': selectRef, 'jwt-update': updateRef, argon2: argonRef, 'argon2-insert': insertRef })
    .map(async ([kind, server]) => [kind, await server.peakRssMb()] as const)))
  const pgVersion = await withClient(databaseUrl, async client => (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? '?')
  const report = [
    renderReport({ machine: machineDescription(pgVersion), seconds, rounds, rows, stormSeconds, storm, health, session, peakRssMb, referenceRssMb }),
    ...(scaling === undefined ? [] : [renderScaling(scaling, seconds)])
  ].join('\n\n')
  console.log(report)
  if (only === null) await writeReport(join(root, 'docs', 'benchmarks.md'), report)
} finally {
  await Promise.all(servers.map(server => server.stop()))
  await withClient(serverUrl, client => client.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`))
}
