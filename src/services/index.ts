// Wires the services together: each receives its collaborators explicitly, no module singletons.
import type { Config, MailSettings } from '../config.js'
import type { PrismaClient } from '../db/prisma.js'
import { createAuthService } from './auth.js'
import { createCredentialService } from './credentials.js'
import { createEmailVerificationService } from './email-verification.js'
import type { Mailer } from './mail.js'
import { createOneTimeTokenService } from './one-time-tokens.js'
import { createPasswordResetService } from './password-reset.js'
import { createPasswordService } from './passwords.js'
import { createRefreshService } from './refresh.js'
import { createSessionService } from './sessions.js'
import { createSettingsService } from './settings.js'
import { createAccessTokenIssuer, createRefreshTokenCodec, type SignJwt } from './tokens.js'
import { createUserService } from './users.js'

export interface ServiceDeps {
  prisma: PrismaClient
  signJwt: SignJwt
  refreshKey: Buffer
  now: () => Date
  mailer: Mailer
  mail: MailSettings
}

export function createServices (config: Config, { prisma, signJwt, refreshKey, now, mailer, mail }: ServiceDeps) {
  const passwords = createPasswordService({
    memoryKiB: config.ARGON2_MEMORY_KIB,
    timeCost: config.ARGON2_TIME_COST,
    parallelism: config.ARGON2_PARALLELISM
  })
  const requireVerifiedEmail = config.REQUIRE_EMAIL_VERIFICATION
  const settings = createSettingsService(config)
  const codec = createRefreshTokenCodec(refreshKey)
  const issueAccessToken = createAccessTokenIssuer({ sign: signJwt, now })
  const sessions = createSessionService({ prisma, codec, settings, now, maxSessionsPerUser: config.MAX_SESSIONS_PER_USER })
  const refresh = createRefreshService({ prisma, codec, settings, issueAccessToken, now, graceSeconds: config.REFRESH_REUSE_GRACE_SECONDS, requireVerifiedEmail })
  const tokens = createOneTimeTokenService({
    prisma,
    now,
    ttlSeconds: {
      email_verify: config.EMAIL_VERIFICATION_TTL_SECONDS,
      email_change: config.EMAIL_VERIFICATION_TTL_SECONDS,
      password_reset: config.PASSWORD_RESET_TTL_SECONDS
    }
  })
  const emails = createEmailVerificationService({
    prisma, tokens, sessions, mailer, now, linkTemplate: mail.emailVerificationUrl, ttlSeconds: config.EMAIL_VERIFICATION_TTL_SECONDS
  })
  const passwordReset = createPasswordResetService({
    prisma, passwords, sessions, tokens, mailer, now, linkTemplate: mail.passwordResetUrl, ttlSeconds: config.PASSWORD_RESET_TTL_SECONDS
  })
  const credentials = createCredentialService({ prisma, passwords, sessions, tokens, mailer })
  const users = createUserService({ prisma, passwords, sessions, emails, mailer })
  const auth = createAuthService({ prisma, passwords, sessions, settings, issueAccessToken, emails, requireVerifiedEmail })
  return { passwords, settings, sessions, refresh, users, auth, emails, passwordReset, credentials }
}

export type Services = ReturnType<typeof createServices>
