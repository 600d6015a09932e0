// The interactive docs: the document served from one string with an ETag, one small rate limit for everything under /docs, DOCS_ENABLED.
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'

const { app, database } = await buildTestApp(t, { env: { RATE_LIMIT_DOCS: '3/60' } })

t.test('the document carries an ETag; a request that holds it gets a 304 without the document', async t => {
  const first = await app.inject({ method: 'GET', url: '/docs/json', remoteAddress: '192.0.2.1' })
  t.equal(first.statusCode, 200)
  t.match(first.headers['content-type'], /^application\/json/)
  t.equal(first.headers['cache-control'], 'no-cache')
  const etag = first.headers.etag as string
  t.match(etag, /^"[A-Za-z0-9_-]+"$/)
  t.equal(JSON.parse(first.body).openapi, '3.1.0')

  const again = await app.inject({ method: 'GET', url: '/docs/json', remoteAddress: '192.0.2.1', headers: { 'if-none-match': `W/"other", ${etag}` } })
  t.equal(again.statusCode, 304)
  t.equal(again.body, '')
  t.equal(again.headers.etag, etag)

  const changed = await app.inject({ method: 'GET', url: '/docs/json', remoteAddress: '192.0.2.1', headers: { 'if-none-match': '"other"' } })
  t.equal(changed.statusCode, 200)
  t.equal(changed.body, first.body, 'the same bytes every time')

  const head = await app.inject({ method: 'HEAD', url: '/docs/json', remoteAddress: '192.0.2.5' })
  t.equal(head.statusCode, 200)
  t.equal(head.headers.etag, etag, 'HEAD answers as GET does')
  t.equal((await app.inject({ method: 'GET', url: '/docs/yaml', remoteAddress: '192.0.2.5' })).statusCode, 200)
})

t.test('a request for the document does not have it built and serialised again', async t => {
  await app.ready()
  const swagger = app.swagger
  let calls = 0
  app.swagger = ((...args: Parameters<typeof swagger>) => { calls++; return swagger.apply(app, args) }) as typeof swagger
  t.teardown(() => { app.swagger = swagger })
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'GET', url: '/docs/json', remoteAddress: '192.0.2.4' })).statusCode, 200)
  t.equal(calls, 0)
})

t.test('the page, its assets and the document share one limit per client ip, apart from the API', async t => {
  const client = { remoteAddress: '192.0.2.2' }
  for (const url of ['/docs/', '/docs/static/swagger-ui.css', '/docs/json']) {
    const response = await app.inject({ method: 'GET', url, ...client })
    t.equal(response.statusCode, 200, url)
    t.equal(response.headers['x-ratelimit-limit'], '3', `${url} shows the closer limit`)
  }
  const refused = await app.inject({ method: 'GET', url: '/docs/static/swagger-ui-bundle.js', ...client })
  t.equal(refused.statusCode, 429)
  t.equal(refused.json().code, 'RATE_LIMITED')
  t.ok(Number(refused.headers['retry-after']) > 0)
  t.equal((await app.inject({ method: 'GET', url: '/health', ...client })).statusCode, 200, 'the API is not held back')
  t.equal((await app.inject({ method: 'GET', url: '/docs/json', remoteAddress: '192.0.2.3' })).statusCode, 200, 'nor another client')
})

t.test('DOCS_ENABLED=false serves no page, no assets and no document', async t => {
  const { app: off } = await buildTestApp(t, { database, env: { DOCS_ENABLED: 'false' } })
  for (const url of ['/docs', '/docs/', '/docs/json', '/docs/yaml', '/docs/static/swagger-ui.css']) {
    t.equal((await off.inject({ method: 'GET', url })).statusCode, 404, url)
  }
  t.equal((await off.inject({ method: 'GET', url: '/health' })).statusCode, 200)
})
