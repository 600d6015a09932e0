// Signing and verifying access-token JWTs (fast-jwt) with the key ring: the kid picks the key, the key pins the algorithm.
import { createDecoder, createSigner, createVerifier } from 'fast-jwt'
import { apiError } from '../errors.js'
import type { KeyRing, SigningKey } from './signing-keys.js'

/** The verified claims of an access token. */
export interface AccessTokenClaims {
  sub: string
  sid: string
  role: string
  email_verified: boolean
  iss: string
  aud: string
  iat: number
  exp: number
  jti: string
}

export interface JwtSettings {
  ring: KeyRing
  issuer: string
  audience: string
  clockToleranceSeconds: number
}

const REQUIRED_CLAIMS = ['sub', 'sid', 'role', 'email_verified', 'iss', 'aud', 'iat', 'exp', 'jti']
// RFC 9068 2.1: access tokens are typed, so no other JWT can pass for one.
const TYP = 'at+jwt'

/**
 * One signer and one verifier per key, made once and kept (keys never change while the
 * process runs). RFC 8725 (JWT BCP): the algorithm comes from the key the kid selects in
 * a fixed in-memory map, never from the token's header (3.1, 3.2: no `none`, no HS256
 * token checked with a public key); `iss`, `aud`, `typ`, `exp` and `nbf` are always checked.
 */
export function createAccessTokenJwt ({ ring, issuer, audience, clockToleranceSeconds }: JwtSettings) {
  const signers = new Map<string, (payload: Record<string, unknown>) => string>()
  const verifiers = new Map<string, (token: string) => AccessTokenClaims>()
  const decodeHeader = createDecoder({ complete: true, checkTyp: TYP })

  function signerFor (key: SigningKey) {
    let signer = signers.get(key.kid)
    if (signer === undefined) {
      signer = createSigner({ key: key.signKey as string | Buffer, algorithm: key.alg, kid: key.kid, iss: issuer, aud: audience, header: { alg: key.alg, typ: TYP } })
      signers.set(key.kid, signer)
    }
    return signer
  }

  function verifierFor (key: SigningKey) {
    let verifier = verifiers.get(key.kid)
    if (verifier === undefined) {
      verifier = createVerifier({
        key: key.verifyKey,
        algorithms: [key.alg],
        allowedIss: issuer,
        allowedAud: audience,
        checkTyp: TYP,
        // fast-jwt counts in milliseconds.
        clockTolerance: clockToleranceSeconds * 1000,
        requiredClaims: REQUIRED_CLAIMS
      }) as (token: string) => AccessTokenClaims
      verifiers.set(key.kid, verifier)
    }
    return verifier
  }

  return {
    /** Signs with the key that signs now; `iat`/`exp` come with the payload, from the injected clock. */
    sign (payload: Record<string, unknown>): string {
      return signerFor(ring.signingKey())(payload)
    },

    /** Verifies signature, algorithm, kid, iss, aud, typ, exp and nbf; throws a catalogue 401. */
    verify (token: string): AccessTokenClaims {
      let header: { kid?: unknown, alg?: unknown }
      try {
        header = (decodeHeader(token) as { header: { kid?: unknown, alg?: unknown } }).header
      } catch {
        throw apiError('AUTH_TOKEN_INVALID')
      }
      const key = ring.verificationKey(header.kid)
      if (key === undefined || header.alg !== key.alg) throw apiError('AUTH_TOKEN_INVALID')
      try {
        return verifierFor(key)(token)
      } catch (error) {
        throw apiError((error as { code?: string }).code === 'FAST_JWT_EXPIRED' ? 'AUTH_TOKEN_EXPIRED' : 'AUTH_TOKEN_INVALID')
      }
    }
  }
}

export type AccessTokenJwt = ReturnType<typeof createAccessTokenJwt>
