// Behind a real reverse proxy: nginx with deploy/nginx.conf and TLS in front of two instances sharing PostgreSQL and Redis.
import { randomBytes, randomInt } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { connect } from 'node:net'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import t from 'tap'
import { parse } from 'yaml'
import { createTestDatabase, withClient } from '../helpers/database.js'
import { freePort } from '../helpers/net.js'
import { httpsCall, nginxConfig, nginxInstalled, NGINX, rawHttpsAnswer, rawHttpsStatus, startNginx } from '../helpers/nginx.js'
import { startServer, stopServer, waitUntilReady, type ServerProcess } from '../helpers/process.js'
import { until } from '../helpers/until.js'
import { newAccount } from '../helpers/users.js'

const root = join(import.meta.dirname, '..', '..')
const serverUrl = process.env.TEST_DATABASE_URL === '' ? undefined : process.env.TEST_DATABASE_URL

t.test('docker-compose.yml and deploy/nginx.conf describe the same setup', async t => {
  const compose = parse(await readFile(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, { environment?: Record<string, string>, networks?: Record<string, { ipv4_address?: string }> | string[], volumes?: string[] }>
  }
  const nginx = await readFile(nginxConfig, 'utf8')
  const upstreams = [...nginx.matchAll(/^\s*server (\S+):(\d+)\b/gm)].map(([, host, port]) => ({ host, port }))
  t.same(upstreams.map(u => u.host), ['auth-a', 'auth-b'], 'nginx balances over the two instances')
  const proxy = compose.services.proxy
  const proxyAddress = Array.isArray(proxy?.networks) ? undefined : proxy?.networks?.backend?.ipv4_address
  t.ok(proxy?.volumes?.includes('./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro'), 'the proxy runs this very file')
  for (const { host, port } of upstreams) {
    const environment = compose.services[host ?? '']?.environment ?? {}
    t.equal(environment.TRUST_PROXY, proxyAddress, `${host} trusts exactly the proxy's address`)
    t.equal(String(environment.PORT ?? 3000), port, `${host} listens where nginx sends`)
    t.match(environment, { NODE_ENV: 'production', REDIS_URL: /^redis:\/\/redis:6379/, DATABASE_URL: /^postgresql:\/\/.+@postgres:5432\// })
  }
  for (const name of ['postgres', 'redis', 'migrate']) t.ok(compose.services[name], `a ${name} service`)
})

const skip = serverUrl === undefined
  ? 'needs TEST_DATABASE_URL: both instances share one PostgreSQL database (the embedded one takes one connection)'
  : !nginxInstalled() && process.env.CI === undefined && `${NGINX} is not installed (apt-get install nginx): reverse proxy test skipped`

t.test('through nginx, with TLS, in front of two instances', { skip }, async t => {
  if (!nginxInstalled()) throw new Error(`${NGINX} is missing: CI installs it (.ci/run) and must run this test`)
  const work = await mkdtemp(join(tmpdir(), 'auth-proxy-'))
  t.teardown(() => rm(work, { recursive: true, force: true }))
  const database = await createTestDatabase()
  t.teardown(database.drop)
  // A client address of its own for this run: per-ip counters in the shared Redis start at zero.
  const client = `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`
  const [portA, portB, proxyPort] = [await freePort(), await freePort(), await freePort()]
  const env = {
    DATABASE_URL: database.url,
    REDIS_URL: 'redis://127.0.0.1:6379',
    AUTH_SECRET: randomBytes(48).toString('base64'),
    PUBLIC_URL: `https://localhost:${proxyPort}`,
    TRUST_PROXY: '127.0.0.1',
    SETTINGS_REFRESH_SECONDS: '1',
    MIGRATE_ON_START: 'false',
    ARGON2_MEMORY_KIB: '1024',
    ARGON2_TIME_COST: '1'
  }
  const a = startServer(env, { port: portA })
  const b = startServer(env, { port: portB })
  t.teardown(() => Promise.all([stopServer(a), stopServer(b)]))
  await Promise.all([waitUntilReady(a), waitUntilReady(b)])
  const nginx = await startNginx(join(work, 'nginx'), proxyPort, [portA, portB])
  t.teardown(nginx.stop)

  const viaProxy = (method: string, path: string, options: { headers?: Record<string, string>, body?: unknown } = {}) =>
    httpsCall(proxyPort, nginx.certificate, client, method, path, options)
  const direct = async (server: ServerProcess, method: string, path: string, options: { headers?: Record<string, string>, body?: unknown } = {}) => {
    const response = await fetch(`${server.baseUrl}${path}`, {
      method,
      headers: { ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) })
    })
    const text = await response.text()
    return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) as Record<string, unknown> }
  }

  const account = newAccount()
  t.equal((await viaProxy('POST', '/auth/register', { body: account })).status, 201, 'register through the proxy')

  await t.test('cookies come back Secure, and the instance records the client, not the proxy', async t => {
    const login = await viaProxy('POST', '/auth/login', {
      headers: { 'sec-fetch-site': 'same-origin', 'x-forwarded-for': '203.0.113.66' },
      body: { email: account.email, password: account.password }
    })
    t.equal(login.status, 200)
    const cookies = [login.headers['set-cookie'] ?? []].flat()
    t.equal(cookies.length, 3, 'the tokens and the device token')
    for (const cookie of cookies) t.match(cookie, /; Secure/, cookie.split('=')[0] ?? '')
    t.match(cookies.join('\n'), /^__Host-auth_device=.*; HttpOnly/m)
    t.match(cookies.join('\n'), /^__Host-access_token=.*; HttpOnly/m)
    t.equal(login.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains', 'HSTS once, from the service')
    const cookie = cookies.map(c => c.split(';')[0]).join('; ')
    const sessions = await viaProxy('GET', '/auth/sessions', { headers: { cookie } })
    t.equal(sessions.status, 200)
    t.equal((sessions.body as { items: Array<{ ip: string }> }).items[0]?.ip, client, "the session holds the client's address; a forged X-Forwarded-For is dropped")
  })

  await t.test('request ids pass through, and both instances log the client address', async t => {
    const given = await viaProxy('GET', '/health', { headers: { 'x-request-id': 'edge-5d1c2a' } })
    t.equal(given.headers['x-request-id'], 'edge-5d1c2a', 'the caller\'s id')
    const made = await viaProxy('GET', '/auth/session')
    t.match(made.headers['x-request-id'], /^[0-9a-f]{32}$/, 'or the one nginx made')
    const linesOf = (server: ServerProcess) => server.logs().filter(line => line.msg === 'request completed' && (line.req as { url?: string }).url === '/nope')
    // Until both have one: a busy machine can make an instance shed load (503), which nginx
    // takes as a failure and skips that instance for its fail_timeout (10 s); and a log line
    // arrives through a pipe.
    await until('a request through the proxy on each instance', async () => {
      await viaProxy('GET', '/nope')
      return linesOf(a).length > 0 && linesOf(b).length > 0
    }, 25_000).catch(() => {})
    for (const [name, server] of [['A', a], ['B', b]] as const) {
      const lines = linesOf(server)
      t.ok(lines.length > 0, `instance ${name} got requests through the proxy`)
      t.ok(lines.every(line => (line.req as { remoteAddress?: string }).remoteAddress === client), `instance ${name} logs the client's address`)
    }
    t.equal((await viaProxy('GET', '/metrics')).status, 404, '/metrics is not served through the proxy')
  })

  await t.test('a session revoked through instance A cannot refresh through instance B', async t => {
    const login = await direct(a, 'POST', '/auth/login', { body: { email: account.email, password: account.password } })
    const { accessToken, refreshToken } = login.body as { accessToken: string, refreshToken: string }
    const rotated = await direct(b, 'POST', '/auth/refresh', { body: { refreshToken } })
    t.equal(rotated.status, 200, 'B accepts A\'s session while it lives')
    t.equal((await direct(a, 'POST', '/auth/logout', { headers: { authorization: `Bearer ${accessToken}` } })).status, 204, 'revoked through A')
    const refused = await direct(b, 'POST', '/auth/refresh', { body: { refreshToken: (rotated.body as { refreshToken: string }).refreshToken } })
    t.equal(refused.status, 401)
    t.match(refused.body, { code: 'AUTH_REFRESH_REVOKED' }, 'B refuses its current token at once')
  })

  await t.test('settings changed through A apply on B within SETTINGS_REFRESH_SECONDS', async t => {
    const admin = newAccount()
    const registered = await direct(a, 'POST', '/auth/register', { body: admin })
    const adminId = (registered.body as { user: { id: string } }).user.id
    await withClient(database.url, client => client.query('UPDATE "User" SET role = \'admin\' WHERE id = $1', [adminId]))
    const { accessToken } = (await direct(a, 'POST', '/auth/login', { body: { email: admin.email, password: admin.password } })).body as { accessToken: string }
    // B is asked by refreshes, which issue tokens with the current lifetimes: polling by login
    // spent the account's login attempts, and a slow machine met its rate limit first.
    let { refreshToken } = (await direct(b, 'POST', '/auth/login', { body: { email: account.email, password: account.password } })).body as { refreshToken: string }
    const changed = await direct(a, 'PUT', '/admin/settings', { headers: { authorization: `Bearer ${accessToken}` }, body: { accessTokenTtlSeconds: 321 } })
    t.equal(changed.status, 200)
    // Asked until 4 s after the change, under the default 5 s; the setting's 1 s leaves a loaded
    // machine's timers and requests room. When the asking request was sent is what counts.
    const started = Date.now()
    let answer: Awaited<ReturnType<typeof direct>> | undefined
    let askedAfter = 0
    while (answer?.body?.expiresIn !== 321 && Date.now() - started < 4000) {
      if (answer !== undefined) await new Promise(resolve => setTimeout(resolve, 100))
      askedAfter = Date.now() - started
      answer = await direct(b, 'POST', '/auth/refresh', { body: { refreshToken } })
      if (typeof answer.body?.refreshToken === 'string') refreshToken = answer.body.refreshToken
    }
    t.equal(answer?.body?.expiresIn, 321, `B issues tokens with the new lifetime within 4 s (last answer: ${answer?.status ?? 'none'}, asked ${askedAfter} ms after the change; SETTINGS_REFRESH_SECONDS=1)`)
  })

  await t.test('login rate limits count across both instances', async t => {
    const attempt = () => viaProxy('POST', '/auth/login', { body: { email: 'nobody@example.com', password: 'not the password' } })
    const first = await attempt()
    t.ok(first.headers['x-ratelimit-limit'], 'login is rate limited')
    const limit = Number(first.headers['x-ratelimit-limit'])
    // nginx alternates the instances; counted per instance, twice the limit would get through.
    let accepted = first.status === 429 ? 0 : 1
    let refusal = first.status === 429 ? first : undefined
    for (let i = 1; i < 2 * limit + 2 && refusal === undefined; i++) {
      const answer = await attempt()
      if (answer.status === 429) refusal = answer
      else accepted++
    }
    t.ok(refusal, 'refused in the end')
    t.ok(accepted <= limit, `${accepted} attempts got through for a limit of ${limit}`)
    t.match(refusal?.body, { code: 'RATE_LIMITED' })
    t.ok(refusal?.headers['retry-after'], 'with Retry-After')
  })

  // Regression: nginx took bodies up to 64 KB, the service 32 KB; the service's 413 closed the
  // connection while nginx was still writing, and nginx answered 502 and set the instance aside.
  await t.test('a body past BODY_LIMIT_BYTES is refused by nginx itself; both instances stay in service', async t => {
    const tooLarge = { email: 'nobody@example.com', password: 'x'.repeat(60_000) }
    // Four clients in a row each: the broken pipe needs nginx to be mid-write as the service closes.
    const answers = (await Promise.all(Array.from({ length: 4 }, async () => {
      const statuses: number[] = []
      for (let i = 0; i < 40; i++) statuses.push((await viaProxy('POST', '/auth/login', { body: tooLarge })).status)
      return statuses
    }))).flat()
    t.same([...new Set(answers)], [413], 'every one 413')
    const refusal = await viaProxy('POST', '/auth/login', { body: tooLarge })
    t.match(refusal.body, { statusCode: 413, code: 'BODY_TOO_LARGE' }, 'in the service\'s error shape, not an HTML page')
    const after = await Promise.all(Array.from({ length: 4 }, async () => await viaProxy('GET', '/health')))
    t.same(after.map(answer => answer.status), [200, 200, 200, 200], 'and nothing answered 502 after them')
    t.notMatch(await nginx.errors(), /upstream server temporarily disabled/, 'no instance set aside')
  })

  // Regression: a request the HTTP parser or the router refuses (a header with a control byte,
  // headers past Node's 16 KB, a malformed escape in the path, a path parameter past its length)
  // was answered and its connection closed at once, while nginx was still writing its body:
  // nginx took the broken pipe for a failed instance, and one anonymous client sending a few
  // such requests a second kept most of everyone's requests at nginx's 503.
  await t.test('requests the service refuses before any route, with bodies: answered, and no instance is set aside', async t => {
    const body = JSON.stringify({ x: 'b'.repeat(30_000) })
    const big = 'a'.repeat(7000)
    const refusals: Record<string, () => Promise<number>> = {
      'a control byte in a header': async () => await rawHttpsStatus(proxyPort, nginx.certificate, client, 'GET /health HTTP/1.1\r\nHost: localhost\r\nX-A: a\x01b', body),
      'headers past 16 KB': async () => (await viaProxy('POST', '/auth/login', { headers: { 'x-a': big, 'x-b': big, 'x-c': big }, body: { x: 'b'.repeat(30_000) } })).status,
      'a malformed escape in the path': async () => (await viaProxy('POST', '/auth/sessions/%E9', { body: { x: 'b'.repeat(30_000) } })).status,
      'a path parameter past its length': async () => (await viaProxy('POST', `/admin/users/${'c'.repeat(2000)}/sessions/revoke`, { body: { x: 'b'.repeat(30_000) } })).status
    }
    for (const [name, refusal] of Object.entries(refusals)) {
      // Four clients in a row each: the broken pipe needs nginx to be mid-write as the service closes.
      const answers = (await Promise.all(Array.from({ length: 4 }, async () => {
        const statuses: number[] = []
        for (let i = 0; i < 10; i++) statuses.push(await refusal())
        return statuses
      }))).flat()
      t.same([...new Set(answers)].filter(status => status !== 400 && status !== 431), [], `${name}: the service's own refusal, every time`)
    }
    const after = await Promise.all(Array.from({ length: 4 }, async () => await viaProxy('GET', '/health')))
    t.same(after.map(answer => answer.status), [200, 200, 200, 200], 'and nothing answered 503 after them')
    t.notMatch(await nginx.errors(), /upstream server temporarily disabled|no live upstreams/, 'no instance set aside')
  })

  await t.test('nginx\'s own refusals are in the service\'s error shape; its access log keeps no query string; TLS 1.2 only with forward secrecy', async t => {
    const folded = await rawHttpsAnswer(proxyPort, nginx.certificate, client, 'POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nContent-Length: 3', '{}')
    t.match(folded, /^HTTP\/1\.1 400 [^]*\r\n\r\n\{"statusCode":400,"code":"MALFORMED_REQUEST"/, 'a request nginx cannot read: 400 MALFORMED_REQUEST')
    t.match(folded, /\r\ncache-control: no-store\r\n/i, 'with the headers of the service\'s errors')
    t.match(folded, /\r\nx-content-type-options: nosniff\r\n/i)
    t.match(folded, /\r\ncontent-type: application\/json; charset=utf-8\r\n/i)
    // Regression: a request line nginx refuses, before it has a URI, was an HTML 500.
    for (const line of ['GET /auth/%zz HTTP/1.1', 'GET /../x HTTP/1.1', 'G@T / HTTP/1.1', 'GET / HTTP/1.x']) {
      t.match(await rawHttpsAnswer(proxyPort, nginx.certificate, client, `${line}\r\nHost: localhost`, ''), /^HTTP\/1\.1 400 [^]*"code":"MALFORMED_REQUEST"/, line)
    }
    t.equal((await viaProxy('GET', `/health?x=${'a'.repeat(9000)}`)).status, 200, 'a URL the service serves (9 KB) is served')
    t.match(await rawHttpsAnswer(proxyPort, nginx.certificate, client, `GET /${'a'.repeat(17_000)} HTTP/1.1\r\nHost: localhost`, ''), /^HTTP\/1\.1 431 [^]*"code":"HEADERS_TOO_LARGE"/, 'a URL past nginx\'s buffers: 431')
    for (const [method, path] of [['GET', '/_nginx/malformed'], ['GET', '/metrics'], ['TRACE', '/health']]) {
      t.match(await rawHttpsAnswer(proxyPort, nginx.certificate, client, `${method} ${path} HTTP/1.1\r\nHost: localhost`, ''), /^HTTP\/1\.1 404 [^]*"code":"NOT_FOUND"/, `${method} ${path}: nginx's JSON 404 (the error locations are internal)`)
    }
    const plain = await new Promise<string>(resolve => {
      const socket = connect({ host: '127.0.0.1', port: proxyPort, localAddress: client }, () => { socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n') })
      let answer = ''
      socket.on('data', chunk => { answer += chunk })
      socket.on('close', () => { resolve(answer) })
      socket.on('error', () => {})
    })
    t.match(plain, /^HTTP\/1\.1 400 [^]*"code":"MALFORMED_REQUEST"/, 'plain HTTP on the TLS port')
    t.notMatch(await nginx.errors(), /empty URI/, 'nginx had a URI for each of them')
    const forged = await viaProxy('GET', '/health', { headers: { 'x-request-id': 'a 10.9.9.9:3000 0.001' } })
    t.match(forged.headers['x-request-id'], /^[0-9a-f]{32}$/, 'a request id the service would not take is replaced by one nginx makes')
    const huge = 'a'.repeat(7000)
    const tooLarge = await viaProxy('GET', '/health', { headers: Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`x-${i}`, huge])) })
    t.match({ status: tooLarge.status, body: tooLarge.body }, { status: 431, body: { code: 'HEADERS_TOO_LARGE' } }, 'headers past nginx\'s buffers: 431 HEADERS_TOO_LARGE')
    const encoded = await rawHttpsAnswer(proxyPort, nginx.certificate, client, 'POST /auth/login HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip', '')
    t.match(encoded, /^HTTP\/1\.1 415 [^]*\{"statusCode":415,"code":"UNSUPPORTED_MEDIA_TYPE"/, 'a Transfer-Encoding nginx does not know: 415')

    await viaProxy('GET', '/reset-password?token=kept-out-of-the-log')
    await until('the access log is written', async () => (await nginx.accessLog()).includes('/reset-password'), 5_000)
    t.notMatch(await nginx.accessLog(), /kept-out-of-the-log/, 'the query string is not logged')
    t.match(await nginx.accessLog(), /"POST \/auth\/login HTTP\/1\.1" 400 /, 'a refusal is logged as the request the client sent (regression: as a GET of the error location)')

    const cipher = async (ciphers: string) => await new Promise<string>(resolve => {
      const socket = tlsConnect({ host: '127.0.0.1', port: proxyPort, servername: 'localhost', ca: nginx.certificate, maxVersion: 'TLSv1.2', ciphers }, () => {
        resolve(socket.getCipher().standardName)
        socket.destroy()
      })
      socket.on('error', () => { resolve('refused') })
    })
    t.equal(await cipher('AES128-SHA:AES256-SHA256:CAMELLIA128-SHA'), 'refused', 'no suite without forward secrecy')
    t.match(await cipher('ECDHE-RSA-AES128-GCM-SHA256'), /^TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256$/, 'ECDHE with AES-GCM')
  })

  // Regression: nginx set an instance aside at its first 503, so a database blip made every
  // route, those needing no database too, nginx's HTML 502, until seconds after its return.
  await t.test('the database out of reach: its routes answer the service\'s 503, the others go on, and nothing is set aside', async t => {
    const login = await viaProxy('POST', '/auth/login', { body: { email: account.email, password: account.password } })
    const bearer = { authorization: `Bearer ${(login.body as { accessToken: string }).accessToken}` }
    const name = new URL(database.url).pathname.slice(1)
    const allowConnections = (allowed: boolean) => withClient(serverUrl as string, client => client.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS ${String(allowed)}`))
    await allowConnections(false)
    t.teardown(() => allowConnections(true))
    await withClient(serverUrl as string, client => client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]))
    for (let i = 0; i < 6; i++) {
      const me = await viaProxy('GET', '/users/me', { headers: bearer })
      t.match({ status: me.status, body: me.body }, { status: 503, body: { code: 'SERVICE_UNAVAILABLE' } }, `${i}: the service's own 503`)
      t.equal((await viaProxy('GET', '/.well-known/jwks.json')).status, 200, `${i}: a route without the database`)
    }
    await allowConnections(true)
    await until('served again', async () => (await viaProxy('GET', '/users/me', { headers: bearer })).status === 200, 5_000)
    t.notMatch(await nginx.errors(), /temporarily disabled|no live upstreams/, 'no instance set aside')
  })

  await t.test('no instance answering at all: nginx\'s own 503, in the service\'s error shape, with a wait', async t => {
    const dead = await startNginx(join(work, 'nginx-dead'), await freePort(), [await freePort(), await freePort()])
    t.teardown(dead.stop)
    const answer = await httpsCall(dead.port, dead.certificate, client, 'GET', '/health')
    t.equal(answer.status, 503)
    t.match(answer.body, { statusCode: 503, code: 'SERVICE_UNAVAILABLE' })
    t.equal(answer.headers['retry-after'], '5')
    t.equal(answer.headers['access-control-allow-origin'], undefined, 'no CORS headers without an Origin')
    // Regression: a browser app on a listed origin got a network error, not the 503 it could act on.
    const app = await httpsCall(dead.port, dead.certificate, client, 'GET', '/users/me', { headers: { origin: 'https://app.example.com', 'x-request-id': 'proxy-503' } })
    t.match(app.headers, { 'access-control-allow-origin': 'https://app.example.com', 'access-control-allow-credentials': 'true', 'access-control-expose-headers': /retry-after/, vary: /Origin/, 'x-request-id': 'proxy-503' }, 'a listed origin reads it')
    const other = await httpsCall(dead.port, dead.certificate, client, 'GET', '/users/me', { headers: { origin: 'https://evil.example' } })
    t.equal(other.headers['access-control-allow-origin'], undefined, 'another origin does not')
    t.equal(other.headers['access-control-allow-credentials'], undefined)
  })

  t.equal(await nginx.errors().then(text => text.match(/\[(emerg|alert|crit)\]/g)), null, 'nginx reported no serious error')
})
