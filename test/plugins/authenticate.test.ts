// The authentication guard: where a route may run it.
import fastifyRateLimit from '@fastify/rate-limit'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import t from 'tap'
import { authenticate } from '../../src/plugins/authenticate.js'

// Every token is refused: what matters here is where the guard runs.
const refusingTokens = fp(async app => {
  app.decorate('accessTokens', { presented: () => null, verify: () => { throw Object.assign(new Error('refused'), { statusCode: 401 }) } } as never)
}, { name: 'access-tokens' })

async function appWith (route: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(refusingTokens)
  await app.register(fastifyRateLimit, { global: true, max: 3, timeWindow: 60_000 })
  await app.register(authenticate)
  await app.register(async scope => { route(scope) })
  await app.ready()
  return app
}

t.test('in preParsing, after the rate limits: a flood of bad tokens is counted', async t => {
  const app = await appWith(scope => { scope.get('/guarded', { preParsing: [scope.authenticate] }, async () => 'never') })
  const statuses = []
  for (let i = 0; i < 5; i++) statuses.push((await app.inject({ method: 'GET', url: '/guarded' })).statusCode)
  t.same(statuses, [401, 401, 401, 429, 429])
})

// Regression: STYLE's recipe (onRequest) let bad tokens through uncounted, 401 for ever.
t.test('in onRequest, however attached, it refuses to run (500), so no route can leave bad tokens uncounted', async t => {
  const forms: Array<[string, (scope: FastifyInstance) => void]> = [
    ['a route\'s onRequest', scope => { scope.get('/early', { onRequest: [scope.authenticate] }, async () => 'never') }],
    ['a scope\'s onRequest hook', scope => { scope.addHook('onRequest', scope.authenticate); scope.get('/early', async () => 'never') }],
    ['wrapped', scope => { scope.get('/early', { onRequest: [async request => { await scope.authenticate(request) }] }, async () => 'never') }]
  ]
  for (const [form, route] of forms) {
    const app = await appWith(route)
    const response = await app.inject({ method: 'GET', url: '/early' })
    t.equal(response.statusCode, 500, form)
  }
})
