// Access tokens: what one vouches for, and minting it (signed by the JWT layer, see plugins/access-token-jwt.ts).
import { randomUUID } from 'node:crypto'

/** What an access token vouches for: the session, its user's role and verification, and how and when the login was proven. Nothing personal. */
export interface AccessGrant {
  userId: string
  sessionId: string
  role: string
  emailVerified: boolean
  /** RFC 8176 authentication methods of the login that opened the session (`amrOf` in sessions/login-records.ts): `pwd`, `otp`, `hwk` and `user` by what was proven, and `mfa` whenever two factors were. */
  amr: string[]
  /** When the user last authenticated on the session: the login, or the latest reauthentication (kept by every refresh until then). */
  authTime: Date
}

export interface SignedAccessToken {
  token: string
  expiresIn: number
}

export type SignJwt = (payload: Record<string, unknown>) => string

export interface AccessTokenIssuerDeps {
  sign: SignJwt
  now: () => Date
  /**
   * The `client_id` claim, which RFC 9068 2.2 requires of an `at+jwt` token (validators of
   * that profile refuse a token without it). This service has no registry of OAuth clients:
   * its tokens are for the apps its audience names, so the claim is the audience.
   */
  clientId: string
}

/**
 * Mints access tokens. `iat`/`exp` come from the injected clock, `jti` is unique (an
 * authentication draws it first, to record it as its session's fresh token), and the signer
 * (configured once) adds `iss`, `aud`, the algorithm and the `typ: at+jwt` header (RFC 9068).
 */
export function createAccessTokenIssuer ({ sign, now, clientId }: AccessTokenIssuerDeps) {
  return function issueAccessToken (grant: AccessGrant, ttlSeconds: number, tokenId: string = randomUUID()): SignedAccessToken {
    const iat = Math.floor(now().getTime() / 1000)
    const token = sign({
      sub: grant.userId,
      sid: grant.sessionId,
      role: grant.role,
      // OpenID Connect's claim names: whether the user has proved control of their email address, and when the login happened.
      email_verified: grant.emailVerified,
      amr: grant.amr,
      auth_time: Math.floor(grant.authTime.getTime() / 1000),
      client_id: clientId,
      jti: tokenId,
      iat,
      exp: iat + ttlSeconds
    })
    return { token, expiresIn: ttlSeconds }
  }
}

export type AccessTokenIssuer = ReturnType<typeof createAccessTokenIssuer>
