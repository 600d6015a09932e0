// Signing and verifying access-token JWTs (fast-jwt) with the key ring: the kid picks the key, the key pins the algorithm.
import { createSigner, createVerifier } from 'fast-jwt'
import { LruMap } from 'toad-cache'
import { apiError } from '../../errors.js'
import type { KeyRing, SigningKey } from './signing-keys.js'

/** The verified claims of an access token. */
export interface AccessTokenClaims {
  sub: string
  sid: string
  role: string
  email_verified: boolean
  /** Absent only from tokens issued before second factors existed (they expire within a day). */
  amr?: string[]
  auth_time?: number
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
  // Every token one key signs starts with the same header segment, so its parse is kept:
  // a few entries, only for headers that named a key of ours (no one can fill it up).
  const headers = new Map<string, JoseHeader>()
  // A client presents the same access token on every request of its life, so the claims of
  // the tokens checked last are kept, keyed by the whole token (exact: no digest to collide),
  // until their exp. A hit still needs the token's key to be live: a retired key's tokens
  // stop at once, cached or not.
  const verified = new LruMap<{ claims: AccessTokenClaims, kid: string, expiresAtMs: number }>(VERIFIED_CACHE_ENTRIES)

  function headerOf (token: string): JoseHeader {
    const segment = token.slice(0, token.indexOf('.'))
    let header = headers.get(segment)
    if (header === undefined) {
      header = parseHeader(segment)
      if (headers.size < HEADER_CACHE_ENTRIES && ring.verificationKey(header.kid) !== undefined) headers.set(segment, header)
    }
    return header
  }

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
      const hit = verified.get(token)
      if (hit !== undefined && Date.now() < hit.expiresAtMs && ring.verificationKey(hit.kid) !== undefined) return hit.claims
      const header = headerOf(token)
      const key = ring.verificationKey(header.kid)
      if (key === undefined || header.alg !== key.alg) throw apiError('AUTH_TOKEN_INVALID')
      let claims: AccessTokenClaims
      try {
        // Frozen: the same object answers every later request with this token.
        claims = Object.freeze(verifierFor(key)(token))
      } catch (error) {
        throw apiError((error as { code?: string }).code === 'FAST_JWT_EXPIRED' ? 'AUTH_TOKEN_EXPIRED' : 'AUTH_TOKEN_INVALID')
      }
      // fast-jwt checks exp against the wall clock, with the tolerance: so does the cache.
      verified.set(token, { claims, kid: key.kid, expiresAtMs: claims.exp * 1000 + clockToleranceSeconds * 1000 })
      return claims
    }
  }
}

interface JoseHeader { kid?: unknown, alg?: unknown }

const HEADER_CACHE_ENTRIES = 32
const VERIFIED_CACHE_ENTRIES = 1000

/**
 * The JOSE header alone, to pick the key: the verifier then decodes the whole token once
 * (fast-jwt's decoder would parse the payload a second time).
 */
function parseHeader (segment: string): JoseHeader {
  try {
    const header: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString())
    if (typeof header === 'object' && header !== null) return header
  } catch {}
  throw apiError('AUTH_TOKEN_INVALID')
}

export type AccessTokenJwt = ReturnType<typeof createAccessTokenJwt>
