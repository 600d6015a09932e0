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

async function appWith (route: (scope: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(refusingTokens)
  await app.register(fastifyRateLimit, { global: true, max: 3, timeWindow: 60_000 })
  await app.register(authenticate)
  await app.register(async scope => { route(scope) })
  return app
}

t.test('in preParsing, after the rate limits: a flood of bad tokens is counted', async t => {
  const app = await appWith(scope => { scope.get('/guarded', { preParsing: [scope.authenticate] }, async () => 'never') })
  await app.ready()
  const statuses = []
  for (let i = 0; i < 5; i++) statuses.push((await app.inject({ method: 'GET', url: '/guarded' })).statusCode)
  t.same(statuses, [401, 401, 401, 429, 429])
})

// Regression: STYLE's recipe (onRequest) let bad tokens through uncounted, 401 for ever.
t.test('in onRequest, a route\'s or its scope\'s, bound or not: the app does not start', async t => {
  const forms: Array<[string, (scope: FastifyInstance) => void]> = [
    ['a route\'s onRequest', scope => { scope.get('/early', { onRequest: [scope.authenticate] }, async () => 'never') }],
    ['a scope\'s onRequest hook', scope => { scope.addHook('onRequest', scope.authenticate); scope.get('/early', async () => 'never') }],
    ['bound', scope => { scope.get('/early', { onRequest: scope.authenticate.bind(scope) }, async () => 'never') }]
  ]
  for (const [form, route] of forms) {
    await t.rejects(async () => { await (await appWith(route)).ready() }, { message: /app\.authenticate runs in preParsing, after the rate limits, not in onRequest: GET \/early, HEAD \/early/ }, form)
  }
})
