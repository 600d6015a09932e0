// The entry for resource servers (Node.js): verify the service's access tokens without calling it.
export { createAccessTokenVerifier, type AccessTokenVerifier, type AccessTokenVerifierOptions } from './verifier.js'
export { accessTokenAuth, type AccessTokenPluginOptions } from './fastify.js'
export { AuthError, isAuthError, type AuthErrorCode } from '../errors.js'
export type { AccessClaims } from '../api-types.js'
