// Where token mode keeps the tokens: in memory by default; the app plugs in secure storage.

export interface StoredTokens {
  accessToken: string
  refreshToken: string
  /** The access token's lifetime in seconds, as the service answered it. */
  expiresIn: number
  /** When the access token expires, by this device's clock (ms since the epoch): no clock skew with the service. */
  expiresAt: number
}

/**
 * Secure storage of the app's choosing (the iOS Keychain, Android's Keystore, a file readable
 * by the process alone): each method may return a promise. Keep the refresh token out of
 * anything that is synced or backed up in clear.
 */
export interface TokenStorage {
  get: () => StoredTokens | null | Promise<StoredTokens | null>
  set: (tokens: StoredTokens) => void | Promise<void>
  clear: () => void | Promise<void>
  /**
   * The device token this device signs in with, or null before its first sign-in. The service
   * mails the account's owner at a sign-in from a device the account has not used lately, and
   * knows a device by this token: not a credential, it only says "this device signed in here
   * before". Keep it beside the tokens, but for good: `clear()` must leave it, since it outlives
   * sign-outs and session ends. Without `getDevice` and `setDevice`, every sign-in is from a new
   * device and mails the owner. Optional, so that a storage written before it still compiles.
   */
  getDevice?: () => string | null | Promise<string | null>
  /** Keeps the device token a sign-in answered (see `getDevice`), in place of the one kept. */
  setDevice?: (deviceToken: string) => void | Promise<void>
}

/**
 * Tokens in memory: gone with the process, so the user signs in at every start. The device
 * token is kept across `clear()` for the process's life only: an app that signs in at every
 * start on memory storage is a new device at each start, and its user is mailed a notice of
 * the sign-in every time, unless the app keeps the device token in a storage of its own.
 */
export function memoryStorage (): TokenStorage {
  let tokens: StoredTokens | null = null
  let device: string | null = null
  return {
    get: () => tokens,
    set: value => { tokens = value },
    clear: () => { tokens = null },
    getDevice: () => device,
    setDevice: value => { device = value }
  }
}
