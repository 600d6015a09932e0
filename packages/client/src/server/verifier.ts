// Access-token verification for resource servers: the service's public keys (JWKS), cached, and every claim checked.
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwksCache, jwtVerify, type ExportedJWKSCache, type JWKSCacheInput, type JWTPayload } from 'jose'
import type { AccessClaims } from '../api-types.js'
import { AuthError } from '../errors.js'

export interface AccessTokenVerifierOptions {
  /** Where this server reaches the service: its keys are at `${baseUrl}/.well-known/jwks.json`. */
  baseUrl: string
  /** The service's `JWT_ISSUER` (its `PUBLIC_URL` unless set). Default: `baseUrl`. */
  issuer?: string
  /** The service's `JWT_AUDIENCE` (its `PUBLIC_URL` unless set). Default: `issuer`. */
  audience?: string
  /** The service's `JWT_ALGORITHM`. Default: both it offers with published keys. */
  algorithms?: Array<'EdDSA' | 'ES256'>
  /** Leeway on `exp` and `nbf`, in seconds, from 0 to 30. Default 0. */
  clockToleranceSeconds?: number
  /** Keys are fetched again after this long (from 0.001 s), so that a retired key stops verifying. Default 300 s, the service's Cache-Control. */
  cacheMaxAgeSeconds?: number
  /** An unknown `kid` fetches the keys again, at most once per this many seconds (0 or more). Default 30 s. */
  cooldownSeconds?: number
  /** How long a fetch of the keys may take, from 0.001 to 2147483.647 s (what a timer holds). Default 5 s. */
  timeoutSeconds?: number
  /**
   * When the keys cannot be fetched again (the service or the network down), the last keys
   * fetched keep verifying for this long (0 or more) past `cacheMaxAgeSeconds`, and the service is asked
   * again once per `cooldownSeconds` meanwhile. Default 3600 s; 0: 503 as soon as the cache is stale.
   */
  staleKeysSeconds?: number
}

type DurationOption = 'clockToleranceSeconds' | 'cacheMaxAgeSeconds' | 'cooldownSeconds' | 'timeoutSeconds' | 'staleKeysSeconds'

// A clock more than this far off is a clock to fix: a tolerance past it accepts tokens long
// expired (the service's access tokens live minutes).
const MAX_CLOCK_TOLERANCE_SECONDS = 30

/**
 * A duration option, checked when the verifier is made (RangeError): jose takes a negative or
 * NaN tolerance for a failure of every verification (a 503 for every token), a timeout longer
 * than a timer holds fires at once, an hour of tolerance accepts tokens an hour expired, and an
 * infinite cache keeps a retired key verifying for good.
 */
function secondsOption (options: AccessTokenVerifierOptions, name: DurationOption, fallback: number, min: number, max = Infinity): number {
  const value: unknown = options[name] ?? fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`${name} must be a number of seconds from ${min}${max === Infinity ? '' : ` to ${max}`}, not ${String(value)}`)
  }
  return value
}

/** Whole milliseconds, as jose takes a timeout. */
const toMs = (seconds: number) => Math.round(seconds * 1000)

export interface AccessTokenVerifier {
  /** The token's claims, or an AuthError: 401 AUTH_TOKEN_EXPIRED or AUTH_TOKEN_INVALID; 503 SERVICE_UNAVAILABLE when the keys cannot be fetched and none fetched before are still usable (`staleKeysSeconds`). */
  verify: (token: string) => Promise<AccessClaims>
}

// RFC 9068 2.1: only a token typed as an access token passes, never an ID token or another JWT.
const TYP = 'at+jwt'
const REQUIRED_CLAIMS = ['sub', 'sid', 'role', 'email_verified', 'iat', 'exp', 'jti']

/**
 * Verifies like the service itself (RFC 8725): the algorithm comes from the allowed list,
 * never from the token alone; `iss`, `aud`, `typ`, `exp` and `nbf` are always checked. A
 * token naming a key not in the cached set makes jose fetch the set again (a key published
 * since), within the cooldown, so forged kids cannot make this server hammer the service.
 */
export function createAccessTokenVerifier (options: AccessTokenVerifierOptions): AccessTokenVerifier {
  const issuer = options.issuer ?? options.baseUrl
  const clockTolerance = secondsOption(options, 'clockToleranceSeconds', 0, 0, MAX_CLOCK_TOLERANCE_SECONDS)
  const cacheMaxAgeMs = toMs(secondsOption(options, 'cacheMaxAgeSeconds', 300, 0.001))
  const cooldownMs = toMs(secondsOption(options, 'cooldownSeconds', 30, 0))
  const timeoutMs = toMs(secondsOption(options, 'timeoutSeconds', 5, 0.001, 2_147_483.647))
  const staleKeysMs = toMs(secondsOption(options, 'staleKeysSeconds', 3600, 0))
  // jose writes the set and its time into `fetched` at each successful fetch.
  const fetched: Partial<ExportedJWKSCache> = {}
  const keys = createRemoteJWKSet(new URL(`${options.baseUrl.replace(/\/+$/, '')}/.well-known/jwks.json`), {
    [jwksCache]: fetched as JWKSCacheInput,
    cacheMaxAge: cacheMaxAgeMs,
    cooldownDuration: cooldownMs,
    timeoutDuration: timeoutMs
  })
  const lastKeys = lastKnownKeys(cacheMaxAgeMs + staleKeysMs, cooldownMs, fetched)
  const verifyOptions = {
    issuer,
    audience: options.audience ?? issuer,
    algorithms: options.algorithms ?? ['EdDSA', 'ES256'],
    typ: TYP,
    clockTolerance,
    requiredClaims: REQUIRED_CLAIMS
  }
  async function verifiedPayload (token: string): Promise<JWTPayload> {
    // Within the cooldown after a failed fetch, the service is not asked again, keys kept or not:
    // each request here would otherwise be one more fetch from a service already failing.
    const cooling = lastKeys.whileUnreachable()
    if (cooling !== undefined) {
      if (cooling.keys === undefined) throw cooling.failure
      return (await jwtVerify(token, cooling.keys, verifyOptions)).payload
    }
    try {
      return (await jwtVerify(token, keys, verifyOptions)).payload
    } catch (error) {
      const stale = isUnreachable(error) ? lastKeys.unreachable(error) : undefined
      if (stale === undefined) throw error
      return (await jwtVerify(token, stale, verifyOptions)).payload
    }
  }
  /**
   * The keys fetched now, when none ever were: asked at most once per cooldown, as every fetch
   * here is (regression: a token signed with HS256 fetched them at each verification while the
   * service was down).
   */
  async function fetchKeysOnce (): Promise<void> {
    const cooling = lastKeys.whileUnreachable()
    if (cooling !== undefined) throw cooling.failure
    await keys.reload().catch((error: unknown) => {
      lastKeys.unreachable(error)
      throw error
    })
  }
  /** The AuthError for a token jose refused with `error`: 503 when telling needed keys that cannot be fetched. */
  async function refusalOf (error: unknown, token: string): Promise<AuthError> {
    try {
      return refusal(error, token, keyGone(error, token, verifyOptions, fetched) || await formerSecretToken(error, token, verifyOptions, fetched, fetchKeysOnce))
    } catch (fetchFailure) {
      return refusal(fetchFailure, token, false)
    }
  }
  return {
    async verify (token) {
      // One spelling per token, as at the service: base64url leaves spare bits in the signature's
      // last character, and every way to set them would otherwise pass as another token.
      if (!hasCanonicalSignature(token)) throw new AuthError('AUTH_TOKEN_INVALID', 'The access token is invalid', 401)
      let payload: JWTPayload
      try {
        payload = await verifiedPayload(token)
      } catch (error) {
        throw await refusalOf(error, token)
      }
      if (!isAccessClaims(payload)) throw new AuthError('AUTH_TOKEN_INVALID', 'The access token is invalid', 401)
      return payload
    }
  }
}

/**
 * The keys last fetched, kept for an outage of the service: a resource server then goes on
 * verifying the tokens it could verify before (they expire within minutes anyway) instead of
 * answering 503 to every request once its cache is stale. Exactly the set the last successful
 * fetch gave, timed from that fetch (jose records both in `cache`), so a key it no longer held
 * never verifies again; bounded, so that a key retired during a long outage does not verify
 * for ever; the service asked again once per cooldown.
 */
function lastKnownKeys (usableMs: number, cooldownMs: number, cache: Partial<ExportedJWKSCache>) {
  let built: { uat: number, set: ReturnType<typeof createLocalJWKSet> } | undefined
  let askAgainAt = 0
  let failure: unknown
  const usable = () => {
    const { jwks, uat } = cache
    if (jwks === undefined || uat === undefined || Date.now() - uat >= usableMs) return undefined
    if (built?.uat !== uat) built = { uat, set: createLocalJWKSet(jwks) }
    return built.set
  }
  return {
    /** The keys could not be fetched (`error`): the service is asked again after the cooldown; meanwhile the last keys, while still usable. */
    unreachable (error: unknown) {
      askAgainAt = Date.now() + cooldownMs
      failure = error
      return usable()
    },
    /** Within the cooldown after a failed fetch: the last keys if still usable, else that fetch's failure; undefined past it. */
    whileUnreachable (): { keys: ReturnType<typeof usable>, failure: unknown } | undefined {
      return Date.now() < askAgainAt ? { keys: usable(), failure } : undefined
    }
  }
}

/**
 * A token in the service's shape (`typ`, an allowed algorithm, `iss` and `aud`) whose `kid` the
 * published keys no longer hold: retired, deleted, or of a former JWT_ALGORITHM. Its refresh
 * token still works, so it is answered as the service answers it, AUTH_TOKEN_EXPIRED, the code
 * clients refresh on. A forgery in that shape only sends its client to refresh; nothing is accepted.
 */
function keyGone (error: unknown, token: string, expected: { issuer: string, audience: string, algorithms: string[], typ: string }, fetched: Partial<ExportedJWKSCache>): boolean {
  if (!(error instanceof errors.JWKSNoMatchingKey)) return false
  try {
    const header = decodeProtectedHeader(token)
    // Only a kid the keys lack altogether, as at the service: one that is no string names no key,
    // and a key still published under another algorithm is a forgery, both AUTH_TOKEN_INVALID.
    const kidGone = header.kid === undefined || (typeof header.kid === 'string' && fetched.jwks?.keys.some(key => key.kid === header.kid) !== true)
    return kidGone && expected.algorithms.includes(header.alg ?? '') && inServiceShape(token, expected)
  } catch {
    return false
  }
}

/** Typed as the service types its access tokens, its kid a string or none, for this issuer and audience (not that it verifies). */
function inServiceShape (token: string, expected: { issuer: string, audience: string, typ: string }): boolean {
  try {
    const { typ, kid } = decodeProtectedHeader(token)
    const claims = decodeJwt(token)
    return typ === expected.typ && (kid === undefined || typeof kid === 'string') && claims.iss === expected.issuer && claims.aud === expected.audience
  } catch {
    return false
  }
}

/**
 * A token in the service's shape signed with its secret while it publishes keys: one signed
 * before the service moved from JWT_ALGORITHM=HS256 to public keys. Its refresh token still
 * works, and the service answers it AUTH_TOKEN_EXPIRED: so does this, or a client would sign
 * its user out. Keys not fetched yet are fetched once to tell (none are published under HS256);
 * failing that, the fetch's failure is thrown.
 */
async function formerSecretToken (error: unknown, token: string, expected: { issuer: string, audience: string, typ: string }, fetched: Partial<ExportedJWKSCache>, fetchKeysOnce: () => Promise<void>): Promise<boolean> {
  if (!signedWithSecret(error, token) || !inServiceShape(token, expected)) return false
  if (fetched.jwks === undefined) await fetchKeysOnce()
  return (fetched.jwks?.keys.length ?? 0) > 0
}

/**
 * A token signed with the service's secret (JWT_ALGORITHM=HS256, its default), which no public
 * key checks: said in the refusal, as a server set up against such a service refuses every
 * token and its developer would otherwise see only "invalid".
 */
function signedWithSecret (error: unknown, token: string): boolean {
  if (!(error instanceof errors.JOSEAlgNotAllowed)) return false
  try {
    return decodeProtectedHeader(token).alg === 'HS256'
  } catch {
    return false
  }
}

function refusal (error: unknown, token: string, keyGone: boolean): AuthError {
  if (error instanceof errors.JWTExpired || keyGone) return new AuthError('AUTH_TOKEN_EXPIRED', 'The access token has expired', 401, { cause: error })
  if (signedWithSecret(error, token)) return new AuthError('AUTH_TOKEN_INVALID', 'The access token is invalid: signed with HS256, which only the service can check; verifying tokens here needs the service to sign with public keys (JWT_ALGORITHM=EdDSA or ES256)', 401, { cause: error })
  if (isUnreachable(error)) return new AuthError('SERVICE_UNAVAILABLE', 'The keys to verify access tokens with cannot be fetched', 503, { cause: error })
  return new AuthError('AUTH_TOKEN_INVALID', 'The access token is invalid', 401, { cause: error })
}

/** Whether the signature is spelled as base64url spells its bytes (its spare bits zero, no padding). */
function hasCanonicalSignature (token: string): boolean {
  const signature = token.slice(token.lastIndexOf('.') + 1)
  return Buffer.from(signature, 'base64url').toString('base64url') === signature
}

/** No keys to check with (the service unreachable, slow, or answering something else): not the token's fault. */
function isUnreachable (error: unknown): boolean {
  return !(error instanceof errors.JOSEError) || error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid || error.code === errors.JOSEError.code
}

function isAccessClaims (payload: JWTPayload): payload is AccessClaims & JWTPayload {
  const claims = payload as Partial<Record<keyof AccessClaims, unknown>>
  return typeof claims.sub === 'string' && typeof claims.sid === 'string' && typeof claims.role === 'string' &&
    typeof claims.jti === 'string' && typeof claims.email_verified === 'boolean'
}
