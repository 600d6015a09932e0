// The access-token layer alone: the access-tokens plugin on a bare Fastify instance, for tests of signing and verifying.
import Fastify from 'fastify'
import { accessTokens } from '../../src/plugins/access-tokens.js'
import { cookies } from '../../src/plugins/cookies.js'
import type { JwtSettings } from '../../src/plugins/access-token-jwt.js'

export async function createAccessTokenJwt (settings: JwtSettings) {
  const app = Fastify()
  await app.register(cookies, { secure: false, sameSite: 'lax', now: () => new Date() })
  await app.register(accessTokens, { ...settings, cookieName: 'access_token' })
  await app.ready()
  return app.accessTokens
}
