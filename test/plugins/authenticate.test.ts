// The authentication guard: where a route may run it.
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import t from 'tap'
import { authenticate } from '../../src/plugins/authenticate.js'

// Every token is refused: what matters here is where the guard runs.
const refusingTokens = fp(async app => {
  app.decorate('accessTokens', { presented: () => null, verify: () => { throw Object.assign(new Error('refused'), { statusCode: 401 }) } } as never)
}, { name: 'access-tokens' })

t.test("a route that runs it in onRequest, before the rate limits, does not start (regression: STYLE's recipe did, and bad tokens were never counted)", async t => {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(refusingTokens)
  await app.register(authenticate)
  app.get('/guarded', { preParsing: [app.authenticate] }, async () => 'never')
  t.throws(() => app.get('/early', { onRequest: [app.authenticate] }, async () => 'never'), /GET \/early: app\.authenticate runs in preParsing/)
  t.throws(() => app.route({ method: ['GET', 'POST'], url: '/early-too', onRequest: app.authenticate, handler: async () => 'never' }), /app\.authenticate runs in preParsing/)
  await app.ready()
  t.equal((await app.inject({ method: 'GET', url: '/guarded' })).statusCode, 401, 'in preParsing it guards')
})
