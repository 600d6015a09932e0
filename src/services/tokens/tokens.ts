// Access tokens (short-lived JWTs) and refresh tokens (opaque values derived from a server key).
import { createHmac, hkdfSync, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'

/** What an access token vouches for: the session, its user's role and verification, and how and when the login was proven. Nothing personal. */
export interface AccessGrant {
  userId: string
  sessionId: string
  role: string
  emailVerified: boolean
  /** RFC 8176 authentication methods of the login that opened the session: `pwd`, plus `otp` and `mfa` after a second factor. */
  amr: string[]
  /** When that login happened. Both this and `amr` are kept by every refresh. */
  authTime: Date
}

export interface SignedAccessToken {
  token: string
  expiresIn: number
}

export type SignJwt = (payload: Record<string, unknown>) => string

/** Derives independent keys from the root secret, so one never doubles as another. */
export function deriveKey (rootSecret: string, purpose: 'access-token' | 'refresh-token' | 'one-time-token' | 'totp-secret'): Buffer {
  return Buffer.from(hkdfSync('sha256', rootSecret, 'auth-service', purpose, 32))
}

/**
 * Mints access tokens. `iat`/`exp` come from the injected clock, `jti` is unique, and the
 * signer (configured once) adds `iss`, `aud`, the algorithm and the `typ: at+jwt` header
 * (RFC 9068).
 */
export function createAccessTokenIssuer ({ sign, now }: { sign: SignJwt, now: () => Date }) {
  return function issueAccessToken (grant: AccessGrant, ttlSeconds: number): SignedAccessToken {
    const iat = Math.floor(now().getTime() / 1000)
    const token = sign({
      sub: grant.userId,
      sid: grant.sessionId,
      role: grant.role,
      // OpenID Connect's claim names: whether the user has proved control of their email address, and when the login happened.
      email_verified: grant.emailVerified,
      amr: grant.amr,
      auth_time: Math.floor(grant.authTime.getTime() / 1000),
      jti: randomUUID(),
      iat,
      exp: iat + ttlSeconds
    })
    return { token, expiresIn: ttlSeconds }
  }
}

export type AccessTokenIssuer = ReturnType<typeof createAccessTokenIssuer>

export interface RefreshTokenParts {
  sessionId: string
  generation: number
  mac: Buffer
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const MAC_BYTES = 32

/**
 * Refresh tokens are `<sessionId>.<generation>.<mac>` where mac = HMAC-SHA256 of the
 * session id, its generation and a per-session random salt, under a key that never
 * touches the database. Nothing about the token is stored: the database alone cannot
 * forge one, the key alone cannot either, and the token of any generation can be
 * re-derived, which gives every concurrent caller of the grace window the same successor.
 */
export function createRefreshTokenCodec (key: Buffer) {
  const macOf = (sessionId: string, generation: number, salt: Uint8Array) =>
    createHmac('sha256', key).update(`${sessionId}.${generation}.`).update(salt).digest()

  return {
    newSalt: (): Uint8Array<ArrayBuffer> => new Uint8Array(randomBytes(32)),

    encode (sessionId: string, generation: number, salt: Uint8Array): string {
      return `${sessionId}.${generation}.${macOf(sessionId, generation, salt).toString('base64url')}`
    },

    /** Splits a presented token; null when it cannot be one of ours. */
    decode (token: string): RefreshTokenParts | null {
      const [sessionId, generationText, macText, extra] = token.split('.')
      if (extra !== undefined || sessionId === undefined || macText === undefined || !UUID.test(sessionId)) return null
      if (generationText === undefined || !/^(0|[1-9][0-9]{0,8})$/.test(generationText)) return null
      const mac = Buffer.from(macText, 'base64url')
      if (mac.length !== MAC_BYTES) return null
      return { sessionId, generation: Number(generationText), mac }
    },

    /** Constant-time check that `parts` is the token of `generation` for this session's salt. */
    matches (parts: RefreshTokenParts, generation: number, salt: Uint8Array): boolean {
      return timingSafeEqual(parts.mac, macOf(parts.sessionId, generation, salt))
    }
  }
}

export type RefreshTokenCodec = ReturnType<typeof createRefreshTokenCodec>
