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
}

/** Tokens in memory: gone with the process, so the user signs in at every start. */
export function memoryStorage (): TokenStorage {
  let tokens: StoredTokens | null = null
  return {
    get: () => tokens,
    set: value => { tokens = value },
    clear: () => { tokens = null }
  }
}
