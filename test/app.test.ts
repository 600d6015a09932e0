// The whole app: health, readiness, docs, and the error shape for unknown routes and bad requests.
import { get as httpGet } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { buildTestApp } from './helpers/app.js'
import { errorCatalogue } from '../src/errors.js'
import { newAccount } from './helpers/users.js'

const { app, prisma } = await buildTestApp(t)

t.test('GET /health and GET /ready', async t => {
  const health = await app.inject({ method: 'GET', url: '/health' })
  t.equal(health.statusCode, 200)
  t.same(health.json(), { status: 'ok' })
  const ready = await app.inject({ method: 'GET', url: '/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready' })
})

t.test('unknown routes answer 404 with a code', async t => {
  for (const [method, url] of [['GET', '/nope'], ['DELETE', '/nope'], ['GET', '/users/me/'], ['GET', '/admin/users/x/y']] as const) {
    const response = await app.inject({ method, url })
    t.equal(response.statusCode, 404, `${method} ${url}`)
    t.same(response.json(), { statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: 'Not found' })
    t.notOk(response.headers.allow, 'no Allow')
  }
})

t.test('a known path asked with another method is 405 with Allow (regression: 404, as for no such path)', async t => {
  const id = '3f1c2b7a-9d1e-4c5b-8a6f-2e7d9c0b1a2f'
  for (const [method, url, allow] of [
    ['DELETE', '/health', 'GET, HEAD'],
    ['GET', '/auth/login', 'POST'],
    ['PUT', '/auth/refresh?x=1', 'POST'],
    ['POST', '/users/me', 'DELETE, GET, HEAD, PATCH, PUT'],
    ['PUT', `/admin/users/${id}`, 'DELETE, GET, HEAD, PATCH'],
    ['POST', '/docs/json', 'GET, HEAD'],
    // The longest credential id: the mirror's parameters are as long as the router's.
    ['PUT', `/auth/passkeys/${'a'.repeat(1364)}`, 'DELETE, PATCH']
  ] as const) {
    const response = await app.inject({ method, url, ...(method === 'GET' ? {} : { payload: {} }) })
    t.equal(response.statusCode, 405, `${method} ${url}`)
    t.equal(response.headers.allow, allow, `${method} ${url}: Allow`)
    t.same(response.json(), { statusCode: 405, code: 'METHOD_NOT_ALLOWED', error: 'Method Not Allowed', message: 'This resource does not take this method; the Allow header lists those it takes' })
  }
  const missingFile = await app.inject({ method: 'GET', url: '/docs/static/no-such-file.js' })
  t.equal(missingFile.statusCode, 404, 'a route of this method that finds nothing is 404')
})

t.test('oversized bodies are refused before parsing', async t => {
  const response = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ email: 'a@b.co', password: 'x'.repeat(100_000) }) })
  t.equal(response.statusCode, 413)
  t.same(response.json(), { statusCode: 413, code: 'BODY_TOO_LARGE', error: 'Payload Too Large', message: 'The request body is too large' }, 'the catalogue\'s message alone (regression: Fastify\'s was appended)')
})

t.test('a range past the end of a static file is 416 with a catalogue code (regression: VALIDATION_FAILED)', async t => {
  const asset = await app.inject({ method: 'GET', url: '/docs/static/swagger-ui.css' })
  t.equal(asset.statusCode, 200)
  const response = await app.inject({ method: 'GET', url: '/docs/static/swagger-ui.css', headers: { range: 'bytes=99999999-' } })
  t.equal(response.statusCode, 416)
  t.same(response.json(), { statusCode: 416, code: 'RANGE_NOT_SATISFIABLE', error: 'Range Not Satisfiable', message: 'The requested range is outside the file' })
})

t.test('a static file that fails the request\'s precondition is 412 PRECONDITION_FAILED (regression: VALIDATION_FAILED, a 400 code)', async t => {
  for (const headers of [{ 'if-match': '"not this one"' }, { 'if-unmodified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' }]) {
    const response = await app.inject({ method: 'GET', url: '/docs/static/swagger-ui.css', headers })
    t.equal(response.statusCode, 412)
    t.same(response.json(), { statusCode: 412, code: 'PRECONDITION_FAILED', error: 'Precondition Failed', message: 'The file does not meet the request\'s precondition (If-Match, If-Unmodified-Since)' })
  }
})

t.test('a static file name too long, or climbing out of its root, is 404 NOT_FOUND (regression: 403 VALIDATION_FAILED)', async t => {
  const notFound = { statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: 'Not found' }
  const long = await app.inject({ method: 'GET', url: `/docs/static/${'a'.repeat(300)}` })
  t.equal(long.statusCode, 404)
  t.same(long.json(), notFound)
  // Over a socket: app.inject, like a browser, resolves the encoded dots before sending.
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const climbing = await new Promise<{ status: number, body: string }>((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: '/docs/static/%2e%2e/%2e%2e/package.json', agent: false }, response => {
      let body = ''
      response.setEncoding('utf8').on('data', chunk => { body += chunk }).on('end', () => resolve({ status: response.statusCode ?? 0, body }))
    }).on('error', reject)
  })
  t.equal(climbing.status, 404)
  t.same(JSON.parse(climbing.body), notFound)
})

t.test('the OpenAPI document lists every route with an operationId and the shared schemas', async t => {
  const response = await app.inject({ method: 'GET', url: '/docs/json' })
  t.equal(response.statusCode, 200)
  const doc = response.json()
  t.match(doc.openapi, /^3\./)
  const operations = Object.entries(doc.paths as Record<string, Record<string, { operationId?: string }>>)
    .flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op })))
  t.ok(operations.length >= 7)
  for (const { path, method, op } of operations) t.ok(op.operationId, `${method} ${path} has an operationId`)
  for (const path of ['/auth/register', '/auth/login', '/users/me', '/health', '/ready']) t.ok(doc.paths[path], path)
  for (const path of ['/auth/password/change', '/auth/password/forgot', '/auth/password/reset', '/auth/email/verify', '/auth/email/resend']) {
    t.ok(doc.paths[path]?.post?.requestBody, `${path} documents its body`)
  }
  t.ok(doc.paths['/auth/password/forgot'].post.responses['202'], 'forgot documents its 202')
  t.ok(doc.paths['/users/me'].delete?.requestBody, 'DELETE /users/me documents its body')
  t.equal(doc.paths['/.well-known/jwks.json']?.get?.operationId, 'getJwks', 'the JWKS is documented')

  // The headers README promises, for clients generated from the document (regression: none listed).
  const login = doc.paths['/auth/login'].post.responses
  t.same(login['429'].headers['Retry-After'], { $ref: '#/components/headers/Retry-After' }, 'a 429 says when to retry')
  t.ok(login['503'].headers['Retry-After'], 'so does a 503')
  t.ok(login['401'].headers['WWW-Authenticate'], 'a 401 names the scheme')
  t.ok(login['415'].headers['Accept-Encoding'], 'a 415 names the content codings a body may have')
  t.notOk(login['200'].headers['Retry-After'], 'only where it is sent')
  const answers = operations.flatMap(({ op }) => Object.values((op as { responses: Record<string, { headers?: Record<string, { $ref: string }> }> }).responses))
  const answerEntries = operations.flatMap(({ op }) => Object.entries((op as { responses: Record<string, { headers?: Record<string, { $ref: string }> }> }).responses))
  t.ok(answerEntries.every(([status, answer]) => (answer.headers?.['X-Request-Id'] !== undefined) === !['408', '431'].includes(status)),
    'every answer carries its request id but the 408 and 431 the HTTP server makes before any request exists')
  t.ok(login['417'].headers['X-Request-Id'], 'the 417 of an unknown Expect carries it too')
  const refs = new Set(answers.flatMap(answer => Object.values(answer.headers ?? {}).map(header => header.$ref)))
  t.ok([...refs].every(ref => doc.components.headers[ref.split('/').at(-1) as string]?.schema !== undefined), 'each header it names is defined')
  t.ok(doc.paths['/users/me'].get.responses['429'], 'limited routes document their 429')
  t.notOk(doc.paths['/health'].get.responses['429'], 'liveness is never limited')
  // What every route can answer besides its own (regression: a CSRF 403, a 413 or a 415 went undocumented).
  for (const status of ['400', '408', '431', '500', '503']) t.ok(doc.paths['/health'].get.responses[status], `GET /health documents its ${status}`)
  t.notOk(doc.paths['/health'].get.responses['415'], 'no body, no 415')
  for (const status of ['400', '403', '413', '415', '429']) t.ok(doc.paths['/auth/verify'].post.responses[status], `POST /auth/verify documents its ${status}`)
  for (const path of ['/auth/register', '/auth/mfa/totp', '/auth/mfa/recovery-codes', '/auth/passkeys/register/options']) t.equal(doc.paths[path].post.requestBody.required, true, `post ${path}: a body that must be sent is required`)
  for (const [method, path] of [['post', '/auth/logout-all'], ['delete', '/auth/mfa/totp'], ['post', '/auth/refresh'], ['delete', '/auth/sessions/{id}']] as const) {
    t.equal(doc.paths[path][method].requestBody?.required, false, `${method} ${path}: a body that may be left out is optional`)
    t.notOk('x-optional-body' in doc.paths[path][method], 'the mark is gone')
  }
  for (const path of ['/auth/sessions', '/admin/users', '/admin/users/{id}/sessions', '/admin/audit']) {
    const limit = (doc.paths[path].get.parameters as Array<{ name: string, required?: boolean, schema: { default?: number } }>).find(parameter => parameter.name === 'limit')
    t.match(limit, { required: false, schema: { default: 20 } }, `${path}: limit may be left out (regression: required)`)
  }
  t.ok(doc.components.schemas.ErrorResponse)
  t.same(doc.components.schemas.ErrorResponse.properties.code.enum, errorCatalogue.map(({ code }) => code), 'the error codes are listed, for generated clients (regression: any string)')
  t.ok(doc.components.schemas.User)
  const ui = await app.inject({ method: 'GET', url: '/docs' })
  t.ok(ui.statusCode === 200 || ui.statusCode === 302, 'interactive docs are served')
})

t.test('the document names the Set-Cookie and rate-limit headers where the answers carry them (regression: neither was listed)', async t => {
  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json()
  const headersOf = (method: string, path: string, status: number) => doc.paths[path][method].responses[String(status)].headers as Record<string, { $ref: string }>
  const listed = (method: string, path: string, status: number, header: string) => headersOf(method, path, status)[header]?.$ref.split('/').at(-1)
  // Each answer checked against its own operation's entry: a cookie login, its refresh, a forged refresh cookie, the logout.
  const account = newAccount()
  await app.inject({ method: 'POST', url: '/auth/register', payload: account })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password, transport: 'cookie' } })
  const cookies = Object.fromEntries(login.cookies.map(cookie => [cookie.name, cookie.value]))
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', cookies })
  const dead = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: Object.fromEntries(login.cookies.map(cookie => [cookie.name, 'forged'])) })
  const loggedOut = await app.inject({ method: 'POST', url: '/auth/logout', cookies: Object.fromEntries(refreshed.cookies.map(cookie => [cookie.name, cookie.value])) })
  for (const [name, response, method, path, expected] of [
    ['login', login, 'post', '/auth/login', 'Set-Cookie-SignIn'],
    ['refresh', refreshed, 'post', '/auth/refresh', 'Set-Cookie-Auth'],
    ['refresh with a forged cookie', dead, 'post', '/auth/refresh', 'Set-Cookie-Cleared'],
    ['logout', loggedOut, 'post', '/auth/logout', 'Set-Cookie-Cleared']
  ] as const) {
    t.ok(response.headers['set-cookie'], `${name}: ${response.statusCode} sets cookies`)
    t.equal(listed(method, path, response.statusCode, 'Set-Cookie'), expected, `${name}: the document says which`)
  }
  t.equal(listed('get', '/users/me', 200, 'Set-Cookie'), undefined, 'not where none is set')
  for (const path of ['/auth/login', '/auth/mfa/verify', '/auth/passkeys/login/verify']) t.equal(listed('post', path, 200, 'Set-Cookie'), 'Set-Cookie-SignIn', `${path}: 200 sets them, the device cookie too`)
  t.equal(listed('post', '/auth/refresh', 200, 'Set-Cookie'), 'Set-Cookie-Auth', 'a refresh sets the tokens\' alone')
  for (const [method, path] of [['post', '/auth/logout-all'], ['delete', '/users/me'], ['delete', '/auth/sessions/{id}'], ['delete', '/admin/users/{id}/sessions/{sessionId}']] as const) {
    t.equal(listed(method, path, 204, 'Set-Cookie'), 'Set-Cookie-Cleared', `${method} ${path}: 204 clears them`)
  }
  t.notOk(JSON.stringify(doc).includes('x-auth-cookies'), 'the mark is gone')

  // The rate limit's state: on every answer of a limited route, whatever its status; none on liveness.
  for (const [method, url, path, payload] of [['GET', '/users/me', '/users/me'], ['POST', '/auth/login', '/auth/login', { email: 'x' }], ['GET', '/health', '/health']] as const) {
    const response = await app.inject({ method, url, ...(payload === undefined ? {} : { payload }) })
    for (const header of ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset']) {
      t.equal(listed(method.toLowerCase(), path, response.statusCode, header) !== undefined, response.headers[header.toLowerCase()] !== undefined, `${method} ${url} ${response.statusCode}: ${header} listed as sent`)
    }
  }
  t.ok(headersOf('get', '/users/me', 429)['X-RateLimit-Remaining'], 'a 429 shows it too')

  // Regression: listed on every status, the refusals that come before the limits included.
  const csrf = await app.inject({ method: 'POST', url: '/auth/register', headers: { origin: 'https://elsewhere.example' }, payload: newAccount() })
  t.equal(csrf.statusCode, 403)
  const { accessToken } = (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } })).json()
  const wrongPassword = await app.inject({ method: 'POST', url: '/auth/password/change', headers: { authorization: `Bearer ${accessToken}` }, payload: { currentPassword: 'not the password at all', newPassword: 'another decent passphrase' } })
  t.equal(wrongPassword.statusCode, 403)
  for (const [name, response, path] of [['a CSRF refusal', csrf, '/auth/register'], ['a route\'s own 403', wrongPassword, '/auth/password/change']] as const) {
    for (const header of ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset']) {
      t.equal(listed('post', path, 403, header) !== undefined, response.headers[header.toLowerCase()] !== undefined, `${name}: ${header} listed as sent`)
    }
  }
  for (const status of [408, 417, 431]) t.equal(listed('post', '/auth/login', status, 'X-RateLimit-Limit'), undefined, `the HTTP server's ${status} comes before the limits`)
  t.notOk(JSON.stringify(doc).includes('x-early-answers'), 'the mark is gone')
})

// Regression: every answer of the document read "Default Response" in the interactive docs.
t.test('every answer in the document is described: its status, and its code where the status has one', async t => {
  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json()
  const answers = Object.values<Record<string, { responses: Record<string, { description: string }> }>>(doc.paths).flatMap(path => Object.values(path).flatMap(operation => Object.entries(operation.responses)))
  t.ok(answers.length > 300)
  t.same(answers.filter(([, answer]) => answer.description === 'Default Response' || answer.description === ''), [])
  const describedAs = (path: string, method: string, status: number) => doc.paths[path][method].responses[String(status)].description
  t.equal(describedAs('/auth/login', 'post', 200), 'OK')
  t.equal(describedAs('/auth/register', 'post', 201), 'Created')
  t.equal(describedAs('/auth/login', 'post', 429), 'Too Many Requests: `RATE_LIMITED`')
  t.equal(describedAs('/auth/login', 'post', 401), 'Unauthorized: one of the 401 codes of docs/api.md\'s catalogue ("Errors")')
})

// Regression: a refused choice said "must be equal to constant" once a value, and "must match a schema in anyOf".
t.test('a value outside a choice is refused naming the values allowed', async t => {
  const refusal = async (url: string, payload: object) => (await app.inject({ method: 'POST', url, payload })).json()
  t.same(await refusal('/auth/login', { email: 'a@example.com', password: 'x', transport: 'pigeon' }), {
    statusCode: 400, code: 'VALIDATION_FAILED', error: 'Bad Request', message: 'The request is invalid: body/transport must be "cookie"'
  })
  t.equal((await refusal('/auth/login', { email: 'a@example.com' })).message, 'The request is invalid: body must have required property \'password\'', 'other refusals as before')
  const account = newAccount()
  const { user } = (await app.inject({ method: 'POST', url: '/auth/register', payload: account })).json()
  await prisma.user.update({ where: { id: user.id }, data: { role: 'admin' } })
  const { accessToken } = (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } })).json()
  const list = await app.inject({ method: 'GET', url: '/admin/users?match=nearby', headers: { authorization: `Bearer ${accessToken}` } })
  t.equal(list.json().message, 'The request is invalid: querystring/match must be one of: "prefix", "exact"')
})

t.test('a route that takes no body refuses one with properties, and does nothing (regression: anything went)', async t => {
  const account = newAccount()
  await app.inject({ method: 'POST', url: '/auth/register', payload: account })
  const { accessToken } = (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } })).json()
  const headers = { authorization: `Bearer ${accessToken}` }
  const refused = await app.inject({ method: 'POST', url: '/auth/logout-all', headers, payload: { everywhere: 'but here' } })
  t.equal(refused.statusCode, 400)
  t.equal(refused.json().code, 'VALIDATION_FAILED')
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers })).statusCode, 200, 'the session lives')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers, payload: {} })).statusCode, 204, 'an empty object is no body')
})

t.test('the error catalogue has unique codes and 4xx/5xx statuses', async t => {
  const codes = errorCatalogue.map(e => e.code)
  t.equal(new Set(codes).size, codes.length)
  for (const entry of errorCatalogue) t.ok(entry.statusCode >= 400 && entry.statusCode < 600, entry.code)
})
