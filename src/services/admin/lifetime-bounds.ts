// The bounds of the runtime token lifetimes (docs/administration.md, Roles and administration), in one place for the API's schema and the console's form. No imports: the console bundles this file.
export const lifetimeBounds = {
  accessTokenTtlSeconds: { minimum: 5, maximum: 86_400 },
  refreshTokenIdleTtlSeconds: { minimum: 60, maximum: 7_776_000 },
  // Their order, besides: see lifetimeOrderProblems.
  sessionAbsoluteTtlSeconds: { minimum: 60, maximum: 31_536_000 }
} as const

export type LifetimeName = keyof typeof lifetimeBounds

/** A set of the three lifetimes, in seconds. */
export type Lifetimes = Record<LifetimeName, number>

/**
 * The order the lifetimes must keep beyond each one's bounds, as the lifetime at fault and the
 * rule it breaks (none: in order). The absolute limit is at least the idle one. An access token
 * lives at most half the idle limit, which moves only at a refresh: a client refreshes once its
 * token has expired, at its next call, so with a token as long as the idle limit a session died
 * under a client in use.
 */
export function lifetimeOrderProblems ({ accessTokenTtlSeconds, refreshTokenIdleTtlSeconds, sessionAbsoluteTtlSeconds }: Lifetimes): Array<{ lifetime: LifetimeName, rule: string }> {
  return [
    ...(sessionAbsoluteTtlSeconds < refreshTokenIdleTtlSeconds ? [{ lifetime: 'sessionAbsoluteTtlSeconds' as const, rule: 'at least the idle lifetime' }] : []),
    ...(accessTokenTtlSeconds * 2 > refreshTokenIdleTtlSeconds ? [{ lifetime: 'accessTokenTtlSeconds' as const, rule: 'at most half the idle lifetime' }] : [])
  ]
}
