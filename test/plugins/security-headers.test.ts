// Security headers for a JSON API on every answer, errors included; a relaxed policy only on the docs' own routes.
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'

const { app } = await buildTestApp(t)

t.test('JSON answers, successes and errors alike, forbid framing, sniffing and any source', async t => {
  for (const [method, url] of [['GET', '/health'], ['GET', '/users/me'], ['GET', '/nope'], ['POST', '/auth/login'], ['GET', '/.well-known/jwks.json']] as const) {
    const response = await app.inject({ method, url })
    t.equal(response.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none';base-uri 'none';form-action 'none'", `${method} ${url}`)
    t.equal(response.headers['x-frame-options'], 'DENY')
    t.equal(response.headers['x-content-type-options'], 'nosniff')
    t.equal(response.headers['referrer-policy'], 'no-referrer')
    t.equal(response.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains')
    t.equal(response.headers['cross-origin-resource-policy'], 'same-origin')
    t.equal(response.headers['x-powered-by'], undefined)
  }
})

t.test('the docs page and its assets get their own policy, scripts from this origin only', async t => {
  for (const url of ['/docs/', '/docs/static/swagger-ui-bundle.js', '/docs/json']) {
    const response = await app.inject({ method: 'GET', url })
    t.equal(response.statusCode, 200, url)
    const csp = response.headers['content-security-policy'] as string
    t.match(csp, /script-src 'self';/, url)
    t.match(csp, /frame-ancestors 'none'/)
    t.notMatch(csp, /unsafe-inline|unsafe-eval|https:/, 'nothing inline, nothing from elsewhere')
  }
})

// Regressions: behind a caching proxy, a 404 of a console asset a rolling deploy had not yet
// brought to one instance was served to everyone after the deploy, and "ready" was answered
// from the cache while the database was down; the docs' document could outlive its release.
t.test('what a shared cache could serve to others or keep past its time is marked: errors and probes no-store, the docs no-cache', async t => {
  const answers = {
    'GET /health': 'no-store',
    'GET /ready': 'no-store',
    'GET /nope': 'no-store',
    'GET /console/assets/console-NOTBUILT.js': 'no-store',
    'DELETE /health': 'no-store',
    'GET /users/me': 'no-store',
    'GET /docs/': 'no-cache',
    'GET /docs/json': 'no-cache',
    'GET /docs/yaml': 'no-cache',
    'GET /.well-known/jwks.json': 'public, max-age=300'
  }
  for (const [request, cacheControl] of Object.entries(answers)) {
    const [method, url] = request.split(' ') as ['GET' | 'DELETE', string]
    t.equal((await app.inject({ method, url })).headers['cache-control'], cacheControl, request)
  }
})
