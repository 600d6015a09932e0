// The bounds of the runtime token lifetimes (docs/administration.md, Roles and administration), in one place for the API's schema and the console's form. No imports: the console bundles this file.
export const lifetimeBounds = {
  accessTokenTtlSeconds: { minimum: 5, maximum: 86_400 },
  refreshTokenIdleTtlSeconds: { minimum: 60, maximum: 7_776_000 },
  /** Also at least the idle lifetime. */
  sessionAbsoluteTtlSeconds: { minimum: 60, maximum: 31_536_000 }
} as const

export type LifetimeName = keyof typeof lifetimeBounds
