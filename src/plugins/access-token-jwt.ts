// Access-token JWTs on @fastify/jwt: one instance per key of the ring, the kid picks it, the key pins the algorithm.
import type { FastifyJWTOptions, JWT } from '@fastify/jwt'
import type { Static } from '@sinclair/typebox'
import { apiError, tokenExpired } from '../errors.js'
import { uuidPattern } from '../services/ids.js'
import type { AccessClaims } from '../schemas/sessions.js'
import type { KeyRing, SigningKey } from '../services/tokens/signing-keys.js'

/** The verified claims of an access token (`amr` and `auth_time` are absent only from tokens issued before second factors existed). */
export type AccessTokenClaims = Static<typeof AccessClaims>

export interface JwtSettings {
  ring: KeyRing
  issuer: string
  audience: string
  clockToleranceSeconds: number
}

const REQUIRED_CLAIMS = ['sub', 'sid', 'role', 'email_verified', 'iss', 'aud', 'iat', 'exp', 'jti']
// RFC 9068 2.1: access tokens are typed, so no other JWT can pass for one.
const TYP = 'at+jwt'
// A client presents the same access token on every request of its life: fast-jwt keeps the
// claims of the tokens each key verified last, until their exp.
const VERIFIED_CACHE_ENTRIES = 1000
const HEADER_CACHE_ENTRIES = 32
const UUID = new RegExp(uuidPattern)

/**
 * The claims every route relies on, in the types it relies on (the ids go into queries as
 * uuids): a token signed by a key of ours but shaped otherwise is refused like a forgery
 * (regression: a 500 further on). Only a holder of the key could make one.
 */
function inOurShape (claims: AccessTokenClaims): boolean {
  return typeof claims.sub === 'string' && UUID.test(claims.sub) && typeof claims.sid === 'string' && UUID.test(claims.sid) &&
    typeof claims.role === 'string' && typeof claims.email_verified === 'boolean' && typeof claims.jti === 'string' &&
    (claims.amr === undefined || (Array.isArray(claims.amr) && claims.amr.every(method => typeof method === 'string'))) &&
    (claims.auth_time === undefined || Number.isSafeInteger(claims.auth_time)) &&
    (claims.client_id === undefined || typeof claims.client_id === 'string')
}

/**
 * The @fastify/jwt options of one key: its signer and verifier are made once and kept (keys
 * never change while the process runs). RFC 8725 (JWT BCP): the algorithm is the key's own,
 * never the token's header's (3.1, 3.2: no `none`, no HS256 token checked with a public
 * key); `iss`, `aud`, `typ`, `exp` and `nbf` are always checked.
 */
export function jwtOptionsOf (key: SigningKey, { issuer, audience, clockToleranceSeconds }: Omit<JwtSettings, 'ring'>, cookieName: string): FastifyJWTOptions {
  return {
    namespace: key.kid,
    jwtDecode: `${key.kid}:jwtDecode`,
    jwtVerify: `${key.kid}:jwtVerify`,
    jwtSign: `${key.kid}:jwtSign`,
    secret: key.alg === 'HS256' ? key.verifyKey : { public: key.verifyKey, ...(key.signKey === null ? {} : { private: key.signKey }) },
    sign: { algorithm: key.alg, kid: key.kid, iss: issuer, aud: audience, header: { alg: key.alg, typ: TYP } },
    verify: {
      algorithms: [key.alg],
      allowedIss: issuer,
      allowedAud: audience,
      checkTyp: TYP,
      // fast-jwt counts in milliseconds.
      clockTolerance: clockToleranceSeconds * 1000,
      requiredClaims: REQUIRED_CLAIMS,
      cache: VERIFIED_CACHE_ENTRIES,
      // Refusals are not kept: fast-jwt keeps one for the clock tolerance plus this (a number may not be below -1).
      errorCacheTTL: () => -1 - clockToleranceSeconds * 1000
    },
    // Read when the request has no Bearer header.
    cookie: { cookieName, signed: false }
  }
}

/**
 * Signs with the key that signs now and verifies with the key a token's kid names, through
 * that key's @fastify/jwt instance (`instances`). A retired key's tokens stop at once,
 * verified before or not: the ring is asked on every call, ahead of the cache.
 */
export function createAccessTokenJwt (settings: Pick<JwtSettings, 'ring' | 'issuer' | 'audience'>, instances: Record<string, JWT>) {
  const { ring } = settings
  // With HS256 the ring's one key derives from AUTH_SECRET, as the refresh tokens' key does.
  const hs256 = ring.all().some(key => key.alg === 'HS256')
  // Every token one key signs starts with the same header segment, so its parse is kept:
  // a few entries, only for headers that named a key of ours (no one can fill it up).
  const headers = new Map<string, JoseHeader>()

  function headerOf (token: string): JoseHeader {
    const segment = token.slice(0, token.indexOf('.'))
    let header = headers.get(segment)
    if (header === undefined) {
      header = parseHeader(segment)
      if (headers.size < HEADER_CACHE_ENTRIES && ring.verificationKey(header.kid) !== undefined) headers.set(segment, header)
    }
    return header
  }

  return {
    /** Signs with the key that signs now; `iat`/`exp` come with the payload, from the injected clock. */
    sign (payload: Record<string, unknown>): string {
      return (instances[ring.signingKey().kid] as JWT).sign(payload)
    },

    /**
     * Verifies signature, algorithm, kid, iss, aud, typ, exp and nbf; throws a catalogue 401.
     * A token in our shape whose key is not one this service verifies with any more is
     * AUTH_TOKEN_EXPIRED (see keyGone); nothing is ever accepted without a live key.
     */
    verify: (token: string): AccessTokenClaims => check(token, false),

    /**
     * `verify`, but a token whose every check but its age holds passes too: a logout by an
     * expired access token ends the session it names (the signature is ours, only its age is
     * past), and so does one signed by a key retired since, while the ring still holds it.
     * Refused, its client would be told 204 while the session and its refresh token lived on
     * (regression: a logout by a token older than its key's retirement ended nothing).
     */
    verifyAllowingExpiry: (token: string): AccessTokenClaims => check(token, true)
  }

  function check (token: string, allowExpired: boolean): AccessTokenClaims {
    // One spelling per token: base64url leaves spare bits in the signature's last character, and
    // each way to set them would pass as another token (to a cache, a deny-list, a log search).
    if (!hasCanonicalSignature(token)) throw apiError('AUTH_TOKEN_INVALID')
    const header = headerOf(token)
    const key = allowExpired ? ring.heldKey(header.kid) : ring.verificationKey(header.kid)
    const instance = key === undefined ? undefined : instances[key.kid]
    if (key === undefined || instance === undefined) {
      // Its claims unverified, the session it names is told back all the same: a client only
      // ever names it back to be refused (AUTH_SESSION_MISMATCH), never to be let in.
      const claims = unverifiedClaims(token)
      throw keyGone(header, claims, settings, hs256) ? expired(claims) : apiError('AUTH_TOKEN_INVALID')
    }
    // A live key under another algorithm is never a token we issued: algorithm confusion (RFC 8725 3.1).
    if (header.alg !== key.alg) throw apiError('AUTH_TOKEN_INVALID')
    let claims: AccessTokenClaims
    try {
      claims = instance.verify<AccessTokenClaims>(token)
    } catch (error) {
      if ((error as { code?: string }).code !== 'FAST_JWT_EXPIRED') throw apiError('AUTH_TOKEN_INVALID')
      // fast-jwt checks the signature, typ and nbf before exp, and iss and aud after it.
      const past = unverifiedClaims(token) as AccessTokenClaims | null
      if (allowExpired && past !== null && past.iss === settings.issuer && past.aud === settings.audience && inOurShape(past)) return Object.freeze(past)
      throw expired(past)
    }
    if (!inOurShape(claims)) throw apiError('AUTH_TOKEN_INVALID')
    // Frozen: the cache answers every later request with this token with the same object.
    return Object.freeze(claims)
  }
}

interface JoseHeader { kid?: unknown, alg?: unknown, typ?: unknown }

// Every algorithm this service has signed with, whatever JWT_ALGORITHM says now.
const OUR_ALGORITHMS = new Set<unknown>(['HS256', 'EdDSA', 'ES256'])

/**
 * Whether a token that names no live key is one this service issued under a key it no longer
 * verifies with: retired by rotation, deleted, another JWT_ALGORITHM, or no kid (issued before
 * kids). Its refresh token does not depend on the signing key, so the client is sent to
 * refresh (AUTH_TOKEN_EXPIRED, the one code the client library refreshes on) instead of being
 * signed out (AUTH_TOKEN_INVALID ends the session, a working refresh token thrown away).
 * Judged on the unverified shape (typ, one of our algorithms, our iss and aud): a forgery in
 * that shape only makes its client refresh, which a refresh token it does not hold cannot do;
 * it is never accepted, and what it learns (that a kid is not live) is public anyway. An
 * HS256 kid that is not the ring's own HS256 key's comes from a replaced AUTH_SECRET, whose
 * refresh tokens died with it: refreshing would only fail, so that one stays invalid.
 */
function keyGone (header: JoseHeader, claims: Record<string, unknown> | null, { issuer, audience }: Pick<JwtSettings, 'issuer' | 'audience'>, hs256: boolean): boolean {
  if (header.typ !== TYP || !OUR_ALGORITHMS.has(header.alg) || (header.kid !== undefined && typeof header.kid !== 'string')) return false
  if (hs256 && header.alg === 'HS256' && header.kid !== undefined) return false
  return claims?.iss === issuer && claims.aud === audience
}

/** Whether the signature is spelled as base64url spells its bytes (its spare bits zero, no padding). */
function hasCanonicalSignature (token: string): boolean {
  const signature = token.slice(token.lastIndexOf('.') + 1)
  return Buffer.from(signature, 'base64url').toString('base64url') === signature
}

/** A token's claims, unverified: read to judge a key gone, and an expired token's once its signature passed. */
function unverifiedClaims (token: string): Record<string, unknown> | null {
  const segments = token.split('.')
  if (segments.length !== 3) return null
  try {
    const claims: unknown = JSON.parse(Buffer.from(segments[1] as string, 'base64url').toString())
    return typeof claims === 'object' && claims !== null ? claims as Record<string, unknown> : null
  } catch {
    return null
  }
}

/** AUTH_TOKEN_EXPIRED, with the session the token names. */
function expired (claims: Record<string, unknown> | null) {
  const sid = claims?.sid
  return tokenExpired(typeof sid === 'string' && UUID.test(sid) ? sid : undefined)
}

/**
 * The JOSE header alone, to pick the key: the verifier then decodes the whole token once
 * (a full decode here would parse the payload a second time).
 */
function parseHeader (segment: string): JoseHeader {
  try {
    const header: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString())
    if (typeof header === 'object' && header !== null) return header
  } catch {}
  throw apiError('AUTH_TOKEN_INVALID')
}

export type AccessTokenJwt = ReturnType<typeof createAccessTokenJwt>
