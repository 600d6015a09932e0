// The JSON Web Key Set (RFC 7517) published at /.well-known/jwks.json.
import { Type } from '@sinclair/typebox'

export const PublicJwk = Type.Object({
  kty: Type.String({ description: '"OKP" for Ed25519, "EC" for P-256' }),
  crv: Type.String({ description: '"Ed25519" or "P-256"' }),
  x: Type.String(),
  y: Type.Optional(Type.String({ description: 'P-256 keys only' })),
  kid: Type.String({ description: 'the kid in the header of the tokens this key signs' }),
  alg: Type.String({ description: '"EdDSA" or "ES256": the only algorithm to accept with this key' }),
  use: Type.Literal('sig')
}, { title: 'Public key' })

export const Jwks = Type.Object({
  keys: Type.Array(PublicJwk, { description: 'empty when tokens are signed with HS256, whose key is never published' })
}, { title: 'JSON Web Key Set' })
