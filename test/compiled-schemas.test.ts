// Each schema compiled once per process: the same function wherever the same schema, context and part meet, another wherever one differs.
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import { compiledOnce } from '../src/compiled-schemas.js'
import { schemaController } from '../src/validation.js'

const counted = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }

async function appWithBodyAndQuery (): Promise<FastifyInstance> {
  const app = Fastify({ schemaController })
  app.post('/body', { schema: { body: counted, response: { 200: counted } } }, async request => request.body)
  app.get('/query', { schema: { querystring: counted, response: { 200: counted } } }, async request => request.query)
  await app.ready()
  return app
}

t.test('a factory runs once for each schema, context and part, in any number of apps', async t => {
  const built: string[] = []
  const cached = compiledOnce((context: string) => (route: { schema: unknown, httpPart: string }) => {
    built.push(`${context} ${route.httpPart} ${JSON.stringify(route.schema)}`)
    return () => built.length
  }, route => route.httpPart)
  const first = cached('a')({ schema: counted, httpPart: 'body' })
  t.equal(cached('a')({ schema: structuredClone(counted), httpPart: 'body' }), first, 'the same JSON, another object: the same function')
  t.not(cached('a')({ schema: counted, httpPart: 'querystring' }), first, 'another part')
  t.not(cached('b')({ schema: counted, httpPart: 'body' }), first, 'another context')
  t.not(cached('a')({ schema: { ...counted, required: [] }, httpPart: 'body' }), first, 'another schema')
  t.equal(built.length, 4)
})

t.test('through Fastify, a body and a query string of one schema keep their own rules in every app', async t => {
  for (const round of [1, 2]) {
    const app = await appWithBodyAndQuery()
    t.teardown(async () => { await app.close() })
    // A body is taken as sent; a query string's numbers arrive as text and are coerced.
    const body = await app.inject({ method: 'POST', url: '/body', payload: { n: '5' } })
    t.equal(body.statusCode, 400, `round ${round}: a body's "5" is not an integer`)
    const query = await app.inject({ method: 'GET', url: '/query?n=5' })
    t.equal(query.statusCode, 200, `round ${round}`)
    t.same(query.json(), { n: 5 })
  }
})

t.test('a response naming a shared schema is written by the shared schema of its own app', async t => {
  const appSharing = async (name: string) => {
    const app = Fastify({ schemaController })
    app.addSchema({ $id: 'Shared', type: 'object', properties: { [name]: { type: 'string' } } })
    app.get('/', { schema: { response: { 200: { $ref: 'Shared#' } } } }, async () => ({ a: 'kept by a', b: 'kept by b' }))
    t.teardown(async () => { await app.close() })
    return app
  }
  for (const name of ['a', 'b', 'a']) {
    const answer = await (await appSharing(name)).inject({ method: 'GET', url: '/' })
    t.same(answer.json(), { [name]: `kept by ${name}` })
  }
})
