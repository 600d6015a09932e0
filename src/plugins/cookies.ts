// The sole owner of the auth cookies: their names and every attribute are decided here and nowhere else.
import fastifyCookie from '@fastify/cookie'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

export interface CookieSettings {
  secure: boolean
  sameSite: 'lax' | 'strict' | 'none'
  now: () => Date
}

export interface CookieTokens {
  accessToken: string
  refreshToken: string
  /** When the session ends: both cookies live until then. */
  refreshExpiresAt: Date
}

declare module 'fastify' {
  interface FastifyReply {
    setAuthCookies: (tokens: CookieTokens) => FastifyReply
    /** A new access token alone (a reauthentication's), living as long as the session, as setAuthCookies' does. */
    setAccessCookie: (accessToken: string, sessionExpiresAt: Date) => FastifyReply
    clearAuthCookies: () => FastifyReply
    /** The device token of a browser that signed in (see services/sessions/devices.ts). */
    setDeviceCookie: (deviceToken: string) => FastifyReply
  }
  interface FastifyRequest {
    authCookies: () => { accessToken: string | undefined, refreshToken: string | undefined }
    deviceCookie: () => string | undefined
  }
}

/**
 * Names follow the secure prefixes (RFC 6265bis 4.1.3): `__Host-` pins both cookies to this
 * host and path `/`, so no page of a sibling subdomain can plant one. A refresh cookie
 * scoped to `/auth` could only be `__Secure-`, and a sibling's cookie of that name with a
 * longer path (`/auth/refresh`) came first in the header: the browser refreshed into the
 * planter's session, or its victim's logout ended nothing.
 */
export function cookieNames (secure: boolean) {
  return secure
    ? { access: '__Host-access_token', refresh: '__Host-refresh_token', device: '__Host-auth_device' }
    : { access: 'access_token', refresh: 'refresh_token', device: 'auth_device' }
}

const DEVICE_COOKIE_SECONDS = 400 * 86_400

async function cookiesPlugin (app: FastifyInstance, settings: CookieSettings) {
  // Parsed only when a route asks for the auth cookies, not on every request.
  await app.register(fastifyCookie, { hook: false })
  const names = cookieNames(settings.secure)
  const base = { httpOnly: true, secure: settings.secure, sameSite: settings.sameSite } as const

  /**
   * Both cookies live as long as the session, the access cookie too: after its token's `exp`
   * the browser still presents it and is answered 401 AUTH_TOKEN_EXPIRED, the one signal to
   * refresh. A cookie that vanished with its token would arrive as no token at all (401
   * AUTH_REQUIRED), which a client cannot tell from being signed out. An expired token is
   * worth nothing to whoever reads it; the cookie is HttpOnly all the same.
   */
  const untilSessionEnd = (expiresAt: Date) => ({ ...base, path: '/', maxAge: Math.max(0, Math.ceil((expiresAt.getTime() - settings.now().getTime()) / 1000)) })
  app.decorateReply('setAuthCookies', function (this: FastifyReply, tokens: CookieTokens) {
    const options = untilSessionEnd(tokens.refreshExpiresAt)
    return this
      .setCookie(names.access, tokens.accessToken, options)
      .setCookie(names.refresh, tokens.refreshToken, options)
      .header('cache-control', 'no-store')
  })

  app.decorateReply('setAccessCookie', function (this: FastifyReply, accessToken: string, sessionExpiresAt: Date) {
    return this.setCookie(names.access, accessToken, untilSessionEnd(sessionExpiresAt)).header('cache-control', 'no-store')
  })

  app.decorateReply('clearAuthCookies', function (this: FastifyReply) {
    return this
      .clearCookie(names.access, { ...base, path: '/' })
      .clearCookie(names.refresh, { ...base, path: '/' })
  })

  /**
   * The device cookie outlives every session, for as long as browsers keep a cookie (400 days,
   * RFC 6265bis 5.5), renewed at each sign-in; a sign-out leaves it: it says only that this
   * browser signed in to the account before, so that the owner is not told of it again.
   */
  app.decorateReply('setDeviceCookie', function (this: FastifyReply, deviceToken: string) {
    return this.setCookie(names.device, deviceToken, { ...base, path: '/', maxAge: DEVICE_COOKIE_SECONDS })
  })

  app.decorateRequest('deviceCookie', function (this: FastifyRequest) {
    const header = this.headers.cookie
    return header === undefined ? undefined : app.parseCookie(header)[names.device]
  })

  app.decorateRequest('authCookies', function (this: FastifyRequest) {
    const header = this.headers.cookie
    if (header === undefined) return { accessToken: undefined, refreshToken: undefined }
    const cookies = app.parseCookie(header)
    return { accessToken: cookies[names.access], refreshToken: cookies[names.refresh] }
  })
}

export const cookies = fp(cookiesPlugin, { name: 'cookies' })
