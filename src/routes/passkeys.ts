// /auth/passkeys/*, and the passkey options of the login's second step and of fresh authentication.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { RateLimits } from '../config-derived.js'
import { perClientIp, sharedBudgets } from '../plugins/rate-limits.js'
import { CurrentPasswordBody, EmptyBody } from '../schemas/accounts.js'
import { LoginCookieResponse, LoginTokenResponse } from '../schemas/auth.js'
import { authCookies, errorResponses, needsCurrentPassword, needsFreshAuthentication, needsProvenAddress, type PasswordPolicy, security } from '../schemas/common.js'
import {
  MfaWebauthnOptionsBody, PasskeyCreationOptions, PasskeyList, PasskeyLoginBody, PasskeyParams, PasskeyRequestOptions,
  PasskeyResponse, RegisterPasskeyBody, RenamePasskeyBody
} from '../schemas/passkeys.js'
import type { Services } from '../services/index.js'
import { MAX_PASSKEYS_PER_USER } from '../services/passkeys/registration.js'
import { answerLogin } from './auth.js'
import { absentBodyAsEmpty, actorOf, callerOf, noStore, signingInDeviceOf, type TypedRoutes } from './request-context.js'

export type PasskeyRoutesOptions = Pick<Services, 'logins' | 'passkeys' | 'challenges' | 'reauthentication' | 'credentials' | 'identifierKeys'> & { passwordPolicy: PasswordPolicy, limits: RateLimits }

const tags = ['passkeys']

/** The routes of a signed-in caller: their passkeys, and the options to reauthenticate with one. */
async function ownPasskeyRoutes (app: FastifyInstance, { passkeys, reauthentication, credentials, passwordPolicy, limits }: PasskeyRoutesOptions) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>()
  routes.addHook('preParsing', app.authenticate)
  // Like the sign-in ceremony: options store a challenge, and each registration stores a
  // passkey and mails the owner; nobody registers more than a few a minute.
  const rateLimit = perClientIp(limits.loginIp)

  routes.post('/auth/passkeys/register/options', {
    config: { rateLimit },
    preHandler: [app.requireFreshAuthentication],
    schema: {
      tags,
      security,
      operationId: 'passkeyRegistrationOptions',
      summary: 'Start registering a passkey',
      description: `Options for navigator.credentials.create(): a discoverable credential, user verification preferred, the caller's passkeys excluded. The challenge works once (a refused response leaves it), for 5 minutes, on this session only. 409 \`PASSKEY_LIMIT_REACHED\` when the caller already has ${MAX_PASSKEYS_PER_USER} passkeys (remove one first). ${needsCurrentPassword} ${needsProvenAddress} ${needsFreshAuthentication}`,
      body: CurrentPasswordBody(passwordPolicy),
      response: { 200: PasskeyCreationOptions, ...errorResponses(400, 401, 403, 409, 415, 429) }
    }
  }, async request => {
    const password = await credentials.assertCurrentPassword(actorOf(request), request.body.currentPassword, 'passkey_registration')
    return await passkeys.registrationOptions(actorOf(request), password)
  })

  routes.post('/auth/passkeys/register/verify', {
    config: { rateLimit },
    preValidation: nameTrimmed,
    preHandler: [app.requireFreshAuthentication],
    schema: {
      tags,
      security,
      operationId: 'registerPasskey',
      summary: 'Finish registering a passkey',
      description: `The credential made with the options of POST /auth/passkeys/register/options. From now on the account has a second factor: a password login asks for it. 400 \`PASSKEY_CHALLENGE_EXPIRED\`, \`PASSKEY_ORIGIN_MISMATCH\`, \`PASSKEY_RP_ID_MISMATCH\` or \`PASSKEY_INVALID\` (also for client or authenticator data that cannot be read, a credential id longer than 1023 bytes, or one other than the response's \`id\`); 409 \`PASSKEY_ALREADY_REGISTERED\`, or \`PASSKEY_LIMIT_REACHED\` past ${MAX_PASSKEYS_PER_USER} passkeys. ${needsProvenAddress} ${needsFreshAuthentication}`,
      body: RegisterPasskeyBody,
      response: { 201: PasskeyResponse, ...errorResponses(400, 401, 403, 409, 415, 429) }
    }
  }, async (request, reply) => reply.code(201).send({ passkey: await passkeys.register(actorOf(request), request.body.response, request.body.name) }))
  passkeyManagementRoutes(routes, app, { passkeys, reauthentication }, rateLimit)
}

/**
 * A passkey's name as it will be stored, trimmed before its schema judges it (trimmed after,
 * a space before a joiner let the joiner pass, then lead the stored name).
 */
async function nameTrimmed (request: FastifyRequest): Promise<void> {
  const body = request.body as { name?: unknown } | undefined
  if (typeof body?.name === 'string') body.name = body.name.trim()
}

/** Listing, renaming and removing the caller's passkeys, and the options to reauthenticate with one. */
function passkeyManagementRoutes (routes: TypedRoutes, app: FastifyInstance, { passkeys, reauthentication }: Pick<PasskeyRoutesOptions, 'passkeys' | 'reauthentication'>, rateLimit: ReturnType<typeof perClientIp>) {
  routes.get('/auth/passkeys', {
    preHandler: [app.requireLiveSession],
    schema: {
      tags,
      security,
      operationId: 'listPasskeys',
      summary: "The caller's passkeys",
      description: `All of them, oldest first: at most ${MAX_PASSKEYS_PER_USER}.`,
      response: { 200: PasskeyList, ...errorResponses(401) }
    }
  }, async request => ({ items: await passkeys.list(callerOf(request).userId) }))

  routes.patch('/auth/passkeys/:id', {
    preValidation: nameTrimmed,
    preHandler: [app.requireLiveSession],
    schema: {
      tags,
      security,
      operationId: 'renamePasskey',
      summary: 'Rename a passkey',
      params: PasskeyParams,
      body: RenamePasskeyBody,
      response: { 200: PasskeyResponse, ...errorResponses(400, 401, 404, 415) }
    }
  }, async request => ({ passkey: await passkeys.rename(actorOf(request), request.params.id, request.body.name) }))

  routes.delete('/auth/passkeys/:id', {
    preValidation: absentBodyAsEmpty,
    preHandler: [app.requireFreshAuthentication],
    schema: {
      tags,
      security,
      operationId: 'removePasskey',
      summary: 'Remove a passkey',
      description: `Without passkeys (and no TOTP factor) a password login asks for no second factor again, and the recovery codes go with the last passkey. ${needsFreshAuthentication}`,
      params: PasskeyParams,
      body: EmptyBody,
      response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404) }
    }
  }, async (request, reply) => {
    await passkeys.remove(actorOf(request), request.params.id)
    return reply.code(204).send(null)
  })

  // Each call stores a challenge: limited as the ceremony it opens is.
  routes.post('/auth/reauthenticate/webauthn/options', {
    config: { rateLimit },
    preValidation: absentBodyAsEmpty,
    schema: {
      tags,
      security,
      operationId: 'reauthenticationPasskeyOptions',
      summary: 'Options to reauthenticate with a passkey',
      description: "Options for navigator.credentials.get() with the caller's passkeys; the challenge works once, for 5 minutes, on this session only. Send the assertion to POST /auth/reauthenticate as `{webauthn}`. 409 `MFA_NOT_ENABLED` without a passkey.",
      body: EmptyBody,
      response: { 200: PasskeyRequestOptions, ...errorResponses(400, 401, 409, 415) }
    }
  }, async request => reauthentication.webauthnOptions(callerOf(request).userId, callerOf(request).sessionId))
}

export async function passkeyRoutes (app: FastifyInstance, options: PasskeyRoutesOptions) {
  const { logins, passkeys, challenges, identifierKeys, limits } = options
  const routes = app.withTypeProvider<TypeBoxTypeProvider>()
  routes.addHook('onSend', noStore)
  // Each options call stores a challenge, and each verify checks a signature: limited like login.
  const rateLimit = perClientIp(limits.loginIp)
  await app.register(ownPasskeyRoutes, options)
  // A sign-in refused for an unverified address mails a reminder within the mailbox's budget, as a login does.
  const reminderBudget = app.rateLimitSpend(sharedBudgets.unprovenRecipient, limits.mailAccount)

  routes.post('/auth/passkeys/login/options', {
    config: { rateLimit },
    preValidation: absentBodyAsEmpty,
    schema: {
      tags,
      operationId: 'passkeyLoginOptions',
      summary: 'Start a passwordless sign-in',
      description: 'Options for navigator.credentials.get() with no credential listed: the browser offers its passkeys for this site (also as autofill, with `mediation: "conditional"`). User verification is required. The challenge works once, for 5 minutes.',
      body: EmptyBody,
      response: { 200: PasskeyRequestOptions, ...errorResponses(400, 415, 429) }
    }
  }, async () => passkeys.loginOptions())

  routes.post('/auth/passkeys/login/verify', {
    config: { rateLimit },
    schema: {
      tags,
      operationId: 'passkeyLogin',
      summary: 'Sign in with a passkey',
      description: 'Answers exactly as POST /auth/login does, in the same transport (cookies for a browser or `transport: "cookie"`, else tokens in the body); `amr` is `["hwk", "user", "mfa"]`: no second step follows. 401 `PASSKEY_CHALLENGE_EXPIRED`, `PASSKEY_ORIGIN_MISMATCH` (also for a ceremony in a frame of another origin), `PASSKEY_RP_ID_MISMATCH`, `PASSKEY_USER_NOT_VERIFIED`, `PASSKEY_COUNTER_REGRESSED`, `PASSKEY_PASSWORD_REQUIRED` (the password was changed or reset since the passkey was last used after it: sign in with the password and use the passkey as the second step, and it signs in alone again) or `PASSKEY_INVALID` (an unknown passkey, a bad signature, client or authenticator data that cannot be read, a user handle missing or not the owner\'s, and a deactivated account alike).',
      body: PasskeyLoginBody,
      response: { 200: Type.Union([LoginTokenResponse, LoginCookieResponse]), ...errorResponses(400, 401, 403, 415, 429) },
      ...authCookies({ 200: 'signed_in' })
    }
  }, async (request, reply) => answerLogin(request, reply, await logins.signInWithPasskey(request.body.response, signingInDeviceOf(request, request.body.deviceToken), async address => await reminderBudget(request, identifierKeys.mailbox(address))), request.body.transport))

  routes.post('/auth/mfa/webauthn/options', {
    config: { rateLimit },
    schema: {
      tags,
      operationId: 'secondFactorPasskeyOptions',
      summary: 'Options to complete a login with a passkey',
      description: "For a login answered `mfaRequired` with `webauthn` among its `methods`: options for navigator.credentials.get() with the account's passkeys, the challenge bound to this `mfaToken` (once, 5 minutes). Send the assertion to POST /auth/mfa/verify as `{mfaToken, webauthn}`. 401 `MFA_CHALLENGE_EXPIRED`; 409 `MFA_NOT_ENABLED` without a passkey.",
      body: MfaWebauthnOptionsBody,
      response: { 200: PasskeyRequestOptions, ...errorResponses(400, 401, 409, 415, 429) }
    }
  }, async request => challenges.webauthnOptions(request.body.mfaToken))
}
