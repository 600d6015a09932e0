// The browser and mobile entry: no runtime dependencies (the verifier for resource servers is in `./server`).
export { createAuthClient, type AuthClient, type AuthClientOptions } from './cookie/client.js'
export { createTokenClient, type TokenClient, type TokenClientOptions } from './token/client.js'
export { memoryStorage, type StoredTokens, type TokenStorage } from './token/storage.js'
export { AuthError, isAuthError, type AuthErrorCode, type ClientErrorCode } from './errors.js'
export type { LoginResult, SignedIn } from './login.js'
export type { SessionEndEvent, SessionEndListener } from './session-events.js'
export type { Fetch, HttpOptions } from './http.js'
export type * from './api-types.js'
