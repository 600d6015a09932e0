// Property-based fuzzing (fast-check) of every documented route over real HTTP: never a 5xx, always the error shape, no change on refusal.
import fc from 'fast-check'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { listen } from '../helpers/http.js'
import { loginAsAdmin } from '../helpers/admin.js'
import { errorCatalogue } from '../../src/errors.js'

const { app, prisma } = await buildTestApp(t)
const http = await listen(app)
const admin = await loginAsAdmin(app, prisma)
const codes = new Set(errorCatalogue.map(entry => entry.code))

interface Operation {
  operationId: string
  security?: unknown[]
  parameters?: Array<{ in: string, name: string }>
  requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> }
}

const doc = (await http.request('/docs/json')).json() as { paths: Record<string, Record<string, Operation>> }
const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
  Object.entries(methods).filter(([method]) => method !== 'head').map(([method, op]) => ({ path, method: method.toUpperCase(), op })))

// Answering these with the admin's token would end the admin's session and blind the rest of the run.
const endsTheCallersSession = new Set(['logout', 'logoutAll', 'deleteMe', 'revokeSession'])

/** Rows whose count no refused request may change (the audit trail and the login backoff count failures by design). */
async function counts (): Promise<string> {
  const [row] = await prisma.$queryRaw<Array<Record<string, number>>>`
    SELECT (SELECT count(*) FROM "User")::int AS users, (SELECT count(*) FROM "Profile")::int AS profiles,
           (SELECT count(*) FROM "Session")::int AS sessions, (SELECT count(*) FROM "OneTimeToken")::int AS tokens,
           (SELECT count(*) FROM "Setting")::int AS settings`
  return JSON.stringify(row)
}

const anyJson = fc.jsonValue({ maxDepth: 4 })
const hostileString = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.constantFrom("' OR 1=1 --", '\u0000', '%', '../../etc/passwd', '__proto__', 'a'.repeat(300)))

function bodyFor (op: Operation) {
  const properties = Object.keys(op.requestBody?.content?.['application/json']?.schema?.properties ?? {})
  const keys = fc.constantFrom(...properties, '__proto__', 'constructor', 'prototype', 'extra')
  const value = fc.oneof(anyJson, hostileString, fc.uuid(), fc.emailAddress())
  return fc.oneof(
    anyJson,
    fc.dictionary(keys, value, { maxKeys: 5 }),
    properties.length === 0 ? fc.constant({}) : fc.record(Object.fromEntries(properties.map(name => [name, value])), { requiredKeys: [] })
  )
}

function urlFor (path: string, op: Operation) {
  const pathParams = (op.parameters ?? []).filter(p => p.in === 'path').map(p => p.name)
  const queryNames = (op.parameters ?? []).filter(p => p.in === 'query').map(p => p.name)
  const segment = fc.oneof(fc.uuid(), hostileString).map(value => encodeURIComponent(value.replace(/[\ud800-\udfff]/g, '')))
  return fc.record({
    params: fc.tuple(...pathParams.map(() => segment)),
    query: fc.dictionary(fc.constantFrom(...queryNames, 'extra'), hostileString, { maxKeys: 3 })
  }).map(({ params, query }) => {
    let url = path
    pathParams.forEach((name, i) => { url = url.replace(`{${name}}`, params[i] ?? '') })
    const search = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, v.replace(/[\ud800-\udfff]/g, '')])).toString()
    return search === '' ? url : `${url}?${search}`
  })
}

t.test('the document lists the routes to fuzz', async t => {
  t.ok(operations.length >= 25, `${operations.length} operations`)
  for (const { path, method } of operations) t.ok(app.hasRoute({ method: method as 'GET', url: path.replace(/\{(\w+)\}/g, ':$1') }), `${method} ${path} is a route`)
})

for (const { path, method, op } of operations) {
  t.test(`${method} ${path}`, async t => {
    const withAdmin = op.security !== undefined && !endsTheCallersSession.has(op.operationId)
    const hasBody = method !== 'GET'
    await fc.assert(fc.asyncProperty(urlFor(path, op), hasBody ? bodyFor(op) : fc.constant(undefined), fc.boolean(), async (url, body, authenticated) => {
      // Mail jobs of earlier runs write rows (tokens) after their answer: let them finish first.
      await app.mailer.flush()
      const before = await counts()
      const response = await http.request(url, {
        method,
        headers: withAdmin && authenticated ? admin.headers : {},
        ...(body === undefined ? {} : { raw: JSON.stringify(body) })
      })
      if (response.status >= 500) throw new Error(`${method} ${url} ${JSON.stringify(body)} → ${response.status} ${response.text}`)
      if (response.status < 400) return
      const error = JSON.parse(response.text) as Record<string, unknown>
      if (JSON.stringify(Object.keys(error).sort()) !== '["code","error","message","statusCode"]' || !codes.has(error.code as string) || error.statusCode !== response.status) {
        throw new Error(`${method} ${url} ${JSON.stringify(body)} → not the error shape: ${response.text}`)
      }
      await app.mailer.flush()
      const after = await counts()
      if (after !== before) throw new Error(`${method} ${url} ${JSON.stringify(body)} → ${response.status}, yet rows changed: ${before} → ${after}`)
    }), { numRuns: Number(process.env.FUZZ_RUNS ?? 12), seed: Number(process.env.FUZZ_SEED ?? 20261121) })
    t.pass('every run held')
  })
}
