// Hostile input over real HTTP: oversized and deeply nested JSON, prototype pollution, SQL meta-characters and NUL in every field, lone surrogates and bytes that are not UTF-8, content- and transfer-coded bodies, malformed %-escapes, cookie injection, look-alike identifiers.
import { connect } from 'node:net'
import { gzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { listen } from '../helpers/http.js'
import { loginAsAdmin } from '../helpers/admin.js'
import { loginWithBody, registerAccount } from '../helpers/users.js'
import { errorCatalogue } from '../../src/errors.js'
import { MAX_PARAM_LENGTH } from '../../src/plugins/error-handler.js'
import { apiSecurityHeaders } from '../../src/plugins/security-headers.js'

const { app, prisma } = await buildTestApp(t)
const http = await listen(app)
const admin = await loginAsAdmin(app, prisma)
const victim = await registerAccount(app)
const codes = new Set(errorCatalogue.map(entry => entry.code))

async function counts () {
  const [users, profiles, sessions, tokens] = await Promise.all([prisma.user.count(), prisma.profile.count(), prisma.session.count(), prisma.oneTimeToken.count()])
  return { users, profiles, sessions, tokens }
}

function assertErrorShape (t: Test, response: { status: number, text: string }, what: string) {
  t.ok(response.status >= 400 && response.status < 500, `${what}: a client error, got ${response.status}`)
  const body = JSON.parse(response.text) as Record<string, unknown>
  t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], `${what}: the error shape`)
  t.ok(codes.has(body.code as string), `${what}: a catalogue code (${String(body.code)})`)
  t.equal(body.statusCode, response.status)
}

t.test('oversized bodies are refused before parsing, deeply nested JSON is refused without harm', async t => {
  const big = await http.request('/auth/login', { raw: JSON.stringify({ email: 'a@example.com', password: 'x'.repeat(40_000) }) })
  t.equal(big.status, 413)
  assertErrorShape(t, big, 'oversized')
  const depth = 15_000
  for (const raw of ['['.repeat(depth) + ']'.repeat(depth), '{"a":'.repeat(depth / 5) + '1' + '}'.repeat(depth / 5)]) {
    const response = await http.request('/auth/login', { raw })
    assertErrorShape(t, response, 'deep nesting at the top')
  }
  const nested = '{"a":'.repeat(3000) + '1' + '}'.repeat(3000)
  const inside = await http.request('/users/me', { method: 'PATCH', headers: admin.headers, raw: `{"profile":{"bio":${nested}}}` })
  assertErrorShape(t, inside, 'deep nesting inside a field')
  t.equal((await http.request('/health')).status, 200, 'the service is fine')
})

t.test('a JSON body nesting past 32 or holding over 512 strings, arrays, objects and commas is refused before it is parsed, on any URL (regression: parsed whole, 4–9 ms of the event loop each)', async t => {
  const shapeRefused = (response: { status: number, json: () => Record<string, unknown> }, what: string) => {
    t.equal(response.status, 400, what)
    t.match(response.json(), { code: 'VALIDATION_FAILED', message: /nest at most 32 deep and hold at most 512 strings, arrays, objects and commas/ }, what)
  }
  for (const [what, raw] of [
    ['16 000 nested arrays', '['.repeat(16_000) + ']'.repeat(16_000)],
    ['33 nested objects', '{"a":'.repeat(33) + '1' + '}'.repeat(33)],
    ['513 parts', JSON.stringify({ identifier: 'a', password: Array(508).fill(1) })],
    ['600 strings', JSON.stringify(Array(600).fill('a'))]
  ] as const) {
    shapeRefused(await http.request('/auth/login', { raw }), `${what} to a route`)
    shapeRefused(await http.request('/no/such/route', { method: 'POST', raw }), `${what} to an unknown URL`)
  }
  for (const [what, raw] of [
    ['32 nested objects', '{"a":'.repeat(32) + '1' + '}'.repeat(32)],
    ['512 parts', JSON.stringify({ identifier: 'a', password: Array(505).fill(1) })],
    ['32 000 closing brackets, which no JSON starts with', ']'.repeat(32_000)],
    ['brackets and commas inside strings', JSON.stringify({ identifier: '['.repeat(100), password: ',{'.repeat(600) + '\\"[' })],
    ['an escaped quote before the brackets', '{"identifier":"\\\\\\"' + '['.repeat(40) + '","password":"x"}']
  ] as const) {
    const response = await http.request('/auth/login', { raw })
    t.notMatch(response.json(), { message: /nest at most/ }, `${what}: past the scan, to the route's own checks`)
    t.ok([400, 401].includes(response.status), `${what}: the route's answer (${response.status})`)
  }
})

t.test('prototype pollution keys are refused and pollute nothing', async t => {
  const payloads = [
    '{"email":"a@example.com","password":"whatever pass","__proto__":{"role":"admin"}}',
    '{"email":"a@example.com","password":"whatever pass","constructor":{"prototype":{"role":"admin"}}}',
    '{"profile":{"__proto__":{"isAdmin":true}}}',
    '{"profile":{"constructor":{"prototype":{"isAdmin":true}}}}'
  ]
  for (const raw of payloads) {
    for (const [path, method, headers] of [['/auth/login', 'POST', {}], ['/auth/register', 'POST', {}], ['/users/me', 'PATCH', admin.headers]] as const) {
      const response = await http.request(path, { method, headers, raw })
      assertErrorShape(t, response, `${path} ${raw.slice(0, 60)}`)
      t.equal((JSON.parse(response.text) as { code: string }).code, 'INVALID_JSON', 'as the catalogue says')
    }
  }
  t.equal(({} as Record<string, unknown>).role, undefined, 'Object.prototype untouched')
  t.equal(({} as Record<string, unknown>).isAdmin, undefined)
  t.equal((await prisma.user.findUniqueOrThrow({ where: { id: victim.user.id } })).role, 'user')
})

const hostile = ["' OR '1'='1", "'; DROP TABLE \"User\"; --", '" OR ""="', '%', '_', '%_%', '\\', "admin'--", '\u0000', 'a\u0000b@example.com', '\u0000admin', '$1', '${}', '\\x00', '\ud800']

t.test('SQL meta-characters and NUL bytes in every string field: a clean 4xx, nothing changed', async t => {
  const before = await counts()
  const bearer = admin.headers
  const fields: Array<[string, string, Record<string, string>, (v: string) => unknown]> = [
    ['POST', '/auth/register', {}, v => ({ email: v, password: 'a decent passphrase', username: v, displayName: v })],
    ['POST', '/auth/register', {}, v => ({ email: `${v}@example.com`, password: v })],
    ['POST', '/auth/login', {}, v => ({ identifier: v, password: v })],
    ['POST', '/auth/login', {}, v => ({ email: v, password: 'x' })],
    ['POST', '/auth/login', {}, v => ({ username: v, password: 'x' })],
    ['POST', '/auth/refresh', {}, v => ({ refreshToken: v })],
    ['POST', '/auth/verify', {}, v => ({ token: v })],
    ['POST', '/auth/password/forgot', {}, v => ({ email: v })],
    ['POST', '/auth/password/reset', {}, v => ({ token: v, password: `${v} and more words` })],
    ['POST', '/auth/email/verify', {}, v => ({ token: v })],
    ['POST', '/auth/password/change', bearer, v => ({ currentPassword: v, newPassword: v })],
    ['PATCH', '/users/me', bearer, v => ({ username: v })],
    ['PATCH', '/users/me', bearer, v => ({ email: v, currentPassword: admin.password })],
    ['DELETE', '/users/me', bearer, v => ({ password: v })],
    ['PATCH', `/admin/users/${victim.user.id}`, bearer, v => ({ role: v })]
  ]
  let registered = 0
  for (const value of hostile) {
    for (const [method, path, headers, body] of fields) {
      const response = await http.request(path, { method, headers, body: body(value) })
      t.ok(response.status < 500, `${method} ${path} ${JSON.stringify(value)}: ${response.status}`)
      // A strange but valid address (admin'--@example.com is one) may register: stored as given, as data.
      if (response.status === 201) registered++
      if (response.status >= 400) assertErrorShape(t, response, `${method} ${path} ${JSON.stringify(value)}`)
    }
    const encoded = value === '\ud800' ? '%ED%A0%80' : encodeURIComponent(value)
    for (const query of [`q=${encoded}`, `cursor=${encoded}`, `role=${encoded}`]) {
      const response = await http.request(`/admin/users?${query}`, { headers: bearer })
      t.ok(response.status === 200 || response.status === 400, `admin list ${query}: ${response.status}`)
      if (response.status === 200 && query.startsWith('q=')) {
        const emails = (response.json().items as Array<{ email: string }>).map(u => u.email)
        t.ok(emails.every(email => email.startsWith(value.toLowerCase())), `q=${JSON.stringify(value)} is a literal prefix, not a pattern`)
      }
    }
    const segment = value === '\ud800' ? '%ED%A0%80' : encodeURIComponent(value)
    for (const path of [`/admin/users/${segment}`, `/auth/sessions/${segment}`]) {
      const response = await http.request(path, { headers: bearer })
      t.ok(response.status < 500, `${path}: ${response.status}`)
    }
  }
  t.same(await counts(), { ...before, users: before.users + registered, profiles: before.profiles + registered, tokens: before.tokens + registered }, 'no other row added or removed')
  t.equal((await loginWithBody(app, victim)).expiresIn > 0, true, 'the victim still logs in')
  t.equal((await loginWithBody(app, admin)).expiresIn > 0, true, 'the admin still logs in: no field was changed')
})

t.test('text that is not well-formed Unicode, and a body that is not UTF-8, are refused like NUL (regression: stored as U+FFFD)', async t => {
  const refused = (response: { status: number, json: () => Record<string, unknown> }, what: string) => {
    t.equal(response.status, 400, what)
    t.equal(response.json().code, 'VALIDATION_FAILED', what)
  }
  const profileOf = async () => await prisma.profile.findUniqueOrThrow({ where: { userId: victim.user.id } })
  const victimHeaders = { authorization: `Bearer ${(await loginWithBody(app, victim)).accessToken}` }
  const before = await profileOf()
  // A lone surrogate travels as a JSON escape: the bytes are ASCII, the string is not Unicode.
  refused(await http.request('/users/me', { method: 'PATCH', headers: victimHeaders, body: { profile: { displayName: '\ud800' } } }), 'a display name')
  refused(await http.request(`/admin/users/${victim.user.id}`, { method: 'PATCH', headers: admin.headers, body: { profile: { displayName: 'Ada \udc00' } } }), 'an admin\'s edit')
  // Both were one password, "x \ufffd\ufffd…", once decoded.
  const email = `surrogates${Date.now()}@example.com`
  refused(await http.request('/auth/register', { body: { email, password: 'x \ud800\ud800 and more words' } }), 'a password')
  refused(await http.request('/auth/login', { body: { identifier: 'zz\ud800', password: 'not the password' } }), 'a login identifier')
  for (const [what, invalid] of [['a stray byte', [0xff]], ['an overlong "/"', [0xc0, 0xaf]], ['a surrogate in UTF-8', [0xed, 0xa0, 0x80]], ['a cut sequence', [0xf0, 0x9f, 0x98]]] as const) {
    const response = await app.inject({ method: 'PATCH', url: '/users/me', headers: { ...victimHeaders, 'content-type': 'application/json; charset=utf-8' }, payload: Buffer.concat([Buffer.from('{"profile":{"bio":"'), Buffer.from(invalid), Buffer.from('"}}')]) })
    refused({ status: response.statusCode, json: () => response.json() }, what)
  }
  t.same(await profileOf(), before, 'nothing changed')
  const fine = await http.request('/users/me', { method: 'PATCH', headers: victimHeaders, body: { profile: { displayName: 'Ada \u{1F600}', bio: '\ufffd stays' } } })
  t.equal(fine.status, 200, 'a well-formed pair, and U+FFFD itself, pass')
  t.match(await profileOf(), { displayName: 'Ada \u{1F600}', bio: '\ufffd stays' })
})

t.test('a body with a Content-Encoding other than identity is 415 before it is parsed (regression: read as if plain; gzip was a 400 about Unicode)', async t => {
  const victimHeaders = { authorization: `Bearer ${(await loginWithBody(app, victim)).accessToken}` }
  const before = await prisma.profile.findUniqueOrThrow({ where: { userId: victim.user.id } })
  const edit = JSON.stringify({ profile: { bio: 'coded' } })
  const coded: Array<[string, string, string | Buffer]> = [
    ['gzip, really compressed', 'gzip', gzipSync(edit)],
    ['gzip, though plain', 'gzip', edit],
    ['a made-up coding', 'x-made-up', edit],
    ['identity after gzip', 'gzip, identity', edit]
  ]
  for (const [what, coding, payload] of coded) {
    const response = await app.inject({ method: 'PATCH', url: '/users/me', headers: { ...victimHeaders, 'content-type': 'application/json', 'content-encoding': coding }, payload })
    t.equal(response.statusCode, 415, what)
    t.same(response.json(), { statusCode: 415, code: 'UNSUPPORTED_MEDIA_TYPE', error: 'Unsupported Media Type', message: 'Send the request body as application/json, without a Content-Encoding or a Transfer-Encoding but chunked' }, what)
    t.equal(response.headers['accept-encoding'], 'identity', `${what}: the codings it takes (RFC 9110 12.5.3)`)
  }
  t.same(await prisma.profile.findUniqueOrThrow({ where: { userId: victim.user.id } }), before, 'nothing changed')
  const login = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, payload: JSON.stringify({ identifier: 'nobody', password: 'not the password' }) })
  t.equal(login.statusCode, 415, 'on every route with a body')
  for (const coding of ['identity', 'Identity']) {
    const response = await app.inject({ method: 'PATCH', url: '/users/me', headers: { ...victimHeaders, 'content-type': 'application/json', 'content-encoding': coding }, payload: edit })
    t.equal(response.statusCode, 200, `${coding}: no coding at all`)
  }
})

/** Sends `head` and a body of `chunks` over a fresh connection; resolves to the status and JSON body of the answer. */
async function rawChunked (head: string, chunks: Array<string | Buffer>): Promise<{ status: number, body: Record<string, unknown>, headers: string }> {
  const framed = Buffer.concat([...chunks.flatMap(chunk => [Buffer.from(`${Buffer.byteLength(chunk).toString(16)}\r\n`), Buffer.from(chunk), Buffer.from('\r\n')]), Buffer.from('0\r\n\r\n')])
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(new URL(http.baseUrl).port), '127.0.0.1', () => { socket.write(Buffer.concat([Buffer.from(head), framed])) })
    let data = ''
    socket.on('data', chunk => {
      data += chunk
      const end = data.indexOf('\r\n\r\n')
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(data)?.[1] ?? -1)
      if (end !== -1 && length >= 0 && Buffer.byteLength(data) >= end + 4 + length) {
        socket.destroy()
        resolve(data)
      }
    })
    socket.on('error', reject)
  })
  const headers = answer.slice(0, answer.indexOf('\r\n\r\n'))
  return { status: Number(answer.slice(9, 12)), body: JSON.parse(answer.slice(headers.length + 4)) as Record<string, unknown>, headers }
}

t.test('a body with a transfer coding other than chunked is 415, as a content coding is (regression: gzip, chunked was a 400 about Unicode; a made-up coding was read as plain)', async t => {
  const victimHeaders = `Authorization: Bearer ${(await loginWithBody(app, victim)).accessToken}\r\n`
  const before = await prisma.profile.findUniqueOrThrow({ where: { userId: victim.user.id } })
  const edit = JSON.stringify({ profile: { bio: 'transfer-coded' } })
  const patch = (coding: string) => `PATCH /users/me HTTP/1.1\r\nHost: auth.example\r\n${victimHeaders}Content-Type: application/json\r\nTransfer-Encoding: ${coding}\r\n\r\n`
  for (const [what, coding, payload] of [['gzip, really compressed', 'gzip, chunked', gzipSync(edit)], ['gzip, though plain', 'gzip, chunked', edit], ['a made-up coding', 'x-made-up, chunked', edit], ['identity', 'identity, chunked', edit]] as const) {
    const response = await rawChunked(patch(coding), [payload])
    t.equal(response.status, 415, what)
    t.same(response.body, { statusCode: 415, code: 'UNSUPPORTED_MEDIA_TYPE', error: 'Unsupported Media Type', message: 'Send the request body as application/json, without a Content-Encoding or a Transfer-Encoding but chunked' }, what)
  }
  t.same(await prisma.profile.findUniqueOrThrow({ where: { userId: victim.user.id } }), before, 'nothing changed')
  for (const coding of ['chunked', 'Chunked']) {
    const response = await rawChunked(patch(coding), [edit.slice(0, 10), edit.slice(10)])
    t.equal(response.status, 200, `${coding}: framing only, undone by the server`)
  }
})

t.test('a malformed %-escape in the query string is 400, as in the path (regression: read as literal text)', async t => {
  for (const query of ['q=%E9', 'q=%ED%A0%80', 'q=100%', 'cursor=%zz', 'q=a&role=%C3']) {
    const response = await http.request(`/admin/users?${query}`, { headers: admin.headers })
    t.equal(response.status, 400, query)
    t.same(response.json(), { statusCode: 400, code: 'VALIDATION_FAILED', error: 'Bad Request', message: 'The request is invalid: text must be well-formed Unicode (UTF-8 in a body and in %-escapes), without NUL characters' }, query)
  }
  const fine = await http.request('/admin/users?q=%C3%A9', { headers: admin.headers })
  t.equal(fine.status, 200, 'a well-formed escape (é) passes')
  t.equal((await http.request('/health?%E9')).status, 400, 'on every route, whether it reads a query or not')
})

t.test('header injection through cookie values', async t => {
  for (const value of ['x; Path=/; Domain=evil.example', 'x, __Host-access_token=y', 'x%0d%0aSet-Cookie:%20evil=1', '"quoted"', 'é']) {
    const response = await http.request('/auth/refresh', { method: 'POST', headers: { cookie: `__Host-refresh_token=${value}`, 'sec-fetch-site': 'same-origin' } })
    t.equal(response.status, 401, `refresh cookie ${value}`)
    const setCookie = response.headers.getSetCookie()
    t.notOk(setCookie.some(line => /evil|Domain=/i.test(line)), 'nothing of the value comes back in Set-Cookie')
    t.equal(response.headers.get('evil'), null)
  }
  // A raw CR LF inside the Cookie header never reaches the app: the HTTP parser refuses it.
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(new URL(http.baseUrl).port), '127.0.0.1', () => {
      socket.end('POST /auth/refresh HTTP/1.1\r\nHost: x\r\nCookie: __Host-refresh_token=a\rSet-Cookie: evil=1\r\nContent-Length: 0\r\n\r\n')
    })
    let data = ''
    socket.on('data', chunk => { data += chunk })
    socket.on('end', () => resolve(data))
    socket.on('error', reject)
  })
  t.match(raw, /^HTTP\/1\.1 400/)
  t.notMatch(raw, /Set-Cookie: evil/i)
})

t.test('emails and usernames differing only by case or unicode normalisation are one identity', async t => {
  const base = `mixed${Date.now()}`
  const first = await http.request('/auth/register', { body: { email: `${base}@example.com`, password: 'a decent passphrase', username: `${base}_u` } })
  t.equal(first.status, 201)
  for (const [email, username] of [
    [`${base.toUpperCase()}@EXAMPLE.COM`, undefined],
    [`${base}@example.com`.replace('m', '\uff4d'), undefined], // fullwidth m
    [`other${base}@example.com`, `${base.toUpperCase()}_U`],
    [`${base}@example.com`.normalize('NFD').replace('e', 'e\u0301'), undefined]
  ]) {
    const response = await http.request('/auth/register', { body: { email, password: 'a decent passphrase', ...(username === undefined ? {} : { username }) } })
    t.ok(response.status === 409 || response.status === 400, `${email} ${username ?? ''}: ${response.status}`)
  }
  for (const identifier of [`${base.toUpperCase()}@Example.Com`, `${base}@example.com`.replace('m', '\uff4d'), `${base.toUpperCase()}_U`]) {
    const response = await http.request('/auth/login', { body: { identifier, password: 'a decent passphrase' } })
    t.equal(response.status, 200, `login as ${identifier}`)
  }
  t.equal(await prisma.user.count({ where: { email: { contains: base } } }), 1, 'one account')
})

t.test('URLs the router refuses answer in the error shape too (regression: 414 FST_ERR_MAX_PARAM_LENGTH), and long parameters it passes on are the routes\' 400', async t => {
  const past = 'a'.repeat(MAX_PARAM_LENGTH + 1)
  for (const [method, path] of [['GET', `/admin/users/${past}`], ['GET', '/admin/users/%E0%A4%A'], ['DELETE', `/auth/sessions/${past}`], ['GET', `/admin/users/${'a'.repeat(300)}`], ['DELETE', `/auth/sessions/${'b'.repeat(MAX_PARAM_LENGTH)}`]] as const) {
    const response = await http.request(path, { method, headers: { ...admin.headers, 'x-request-id': 'router-refusal-1' } })
    t.equal(response.status, 400, path.slice(0, 40))
    assertErrorShape(t, response, path.slice(0, 40))
    t.equal(response.json().code, 'VALIDATION_FAILED')
    // Refused before any hook, with the headers every other answer carries (regression: none).
    t.equal(response.headers.get('x-request-id'), 'router-refusal-1', 'the caller\'s request id')
    t.equal(response.headers.get('x-content-type-options'), 'nosniff')
    t.equal(response.headers.get('content-security-policy'), apiSecurityHeaders['content-security-policy'])
  }
})
