// /.well-known/jwks.json: the public keys other services verify access tokens with, without calling this service.
import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { errorResponses } from '../schemas/common.js'
import { Jwks } from '../schemas/well-known.js'
import type { PublicJwk } from '../services/tokens/signing-keys.js'

export interface WellKnownRoutesOptions {
  /** The keys that verify now or will sign soon. */
  jwks: () => { keys: PublicJwk[] }
  /** How long verifiers may cache the set: shorter than a new key's publication before it signs. */
  maxAgeSeconds: number
}

export async function wellKnownRoutes (app: FastifyInstance, { jwks, maxAgeSeconds }: WellKnownRoutesOptions) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>()

  routes.get('/.well-known/jwks.json', {
    schema: {
      tags: ['keys'],
      operationId: 'getJwks',
      summary: 'Public keys for verifying access tokens (JWKS)',
      description: 'With EdDSA or ES256: every key that verifies now, and a new key before it starts signing. Pick the key by the token\'s `kid` and accept only its `alg`; on an unknown kid, fetch the set again. With HS256: `{"keys": []}`, since that key is never published.',
      response: { 200: Jwks, ...errorResponses(429) }
    }
  }, async (_request, reply) => {
    reply.header('cache-control', `public, max-age=${maxAgeSeconds}`)
    return jwks()
  })
}
