// Wires the services together: each receives its collaborators explicitly, no module singletons.
import { availableParallelism } from 'node:os'
import type { Config } from '../config.js'
import { audienceOf, type MailSettings } from '../config-derived.js'
import type { PrismaClient } from '../db/prisma.js'
import type { Sql } from '../db/sql.js'
import { createAdminService } from './admin/users.js'
import { createAuditService } from './admin/audit.js'
import { createLoginService } from './sessions/login.js'
import { createCredentialService } from './passwords/credentials.js'
import { createEmailVerificationService } from './accounts/email-verification.js'
import { createLoginRecords } from './sessions/login-records.js'
import { createIdentifierKeys, createLoginThrottle } from './sessions/login-throttle.js'
import { createRetentionService } from './retention.js'
import type { MailLog, MailSender } from './mail/sender.js'
import { createMailDelivery } from './mail/delivery.js'
import { createMailOutbox } from './mail/outbox.js'
import { createChallengeService } from './mfa/challenges.js'
import { createUnfinishedSignIns } from './mfa/unfinished-sign-ins.js'
import { createFactorService } from './mfa/factors.js'
import { createReauthenticationService } from './mfa/reauthentication.js'
import { createAssertionVerifier } from './passkeys/assertions.js'
import { createCeremonyChallenges } from './passkeys/ceremony-challenges.js'
import { createPasskeyService } from './passkeys/passkeys.js'
import { webauthnSettingsOf } from '../config-webauthn.js'
import type { AuthMetrics, MailMetrics } from './metrics.js'
import { createOneTimeTokenService } from './tokens/one-time-tokens.js'
import { createPasswordResetService } from './passwords/password-reset.js'
import { createPasswordService, type Argon2Threads } from './passwords/passwords.js'
import { createRefreshService } from './sessions/refresh.js'
import { createSessionService } from './sessions/sessions.js'
import { createSettingsService } from './admin/settings.js'
import { createAccessTokenIssuer, type SignJwt } from './tokens/access-tokens.js'
import type { SealKeys } from './mfa/totp.js'
import { createRefreshTokenCodec } from './tokens/refresh-tokens.js'
import { createUserService } from './accounts/users.js'
import { createUnverifiedAccountExpiry } from './accounts/unverified-accounts.js'

export interface ServiceDeps {
  prisma: PrismaClient
  /** The pool under `prisma`, for the hot paths' own statements. */
  sql: Sql
  signJwt: SignJwt
  refreshKey: Buffer
  /** What mailed one-time tokens are derived from. */
  oneTimeTokenKey: Buffer
  /** What login identifiers and mailboxes are counted under (IdentifierKeys). */
  identifierKey: Buffer
  /** What TOTP secrets are sealed with at rest. */
  totpKeys: SealKeys
  now: () => Date
  /** Where failures that must not fail a request (audit writes, settings reloads) are reported. */
  reportError: (error: unknown, context: string) => void
  mailSender: MailSender
  mailLog: MailLog
  mail: MailSettings
  /** Where login, refresh and mail outcomes are counted. */
  metrics: AuthMetrics & MailMetrics
  /** Hashing threads shared with other apps of the process (see `createPasswordService`). */
  argon2Threads?: Argon2Threads
}

/** Password hashing with the configured argon2id cost, on threads of its own unless `shared` are given. */
export function passwordServiceFor (config: Config, shared?: Argon2Threads) {
  return createPasswordService({
    memoryKiB: config.ARGON2_MEMORY_KIB,
    timeCost: config.ARGON2_TIME_COST,
    parallelism: config.ARGON2_PARALLELISM,
    concurrency: config.ARGON2_CONCURRENCY === 0 ? availableParallelism() : config.ARGON2_CONCURRENCY,
    maxWaiting: config.ARGON2_MAX_WAITING,
    nice: config.ARGON2_NICE,
    minLength: config.PASSWORD_MIN_LENGTH,
    maxLength: config.PASSWORD_MAX_LENGTH
  }, shared)
}

/** The brute-force backoff and lockout of logins, with the configured policy. */
function loginThrottleFor (config: Config, prisma: PrismaClient, now: () => Date, identifierKey: Buffer) {
  return createLoginThrottle({
    prisma,
    now,
    keys: createIdentifierKeys(identifierKey),
    policy: {
      backoffAfter: config.LOGIN_BACKOFF_AFTER_FAILURES,
      baseSeconds: config.LOGIN_BACKOFF_BASE_SECONDS,
      maxSeconds: config.LOGIN_BACKOFF_MAX_SECONDS,
      lockoutAfter: config.LOGIN_LOCKOUT_AFTER_FAILURES,
      lockoutSeconds: config.LOGIN_LOCKOUT_SECONDS
    }
  })
}

/** Mailed one-time tokens, living as long as the configured link lifetimes. */
function oneTimeTokenServiceFor (config: Config, prisma: PrismaClient, now: () => Date, key: Buffer) {
  return createOneTimeTokenService({
    prisma,
    now,
    key,
    ttlSeconds: {
      email_verify: config.EMAIL_VERIFICATION_TTL_SECONDS,
      email_change: config.EMAIL_VERIFICATION_TTL_SECONDS,
      password_reset: config.PASSWORD_RESET_TTL_SECONDS
    }
  })
}

export function createServices (config: Config, { prisma, sql, signJwt, refreshKey, oneTimeTokenKey, identifierKey, totpKeys, now, reportError, mailSender, mailLog, mail, metrics, argon2Threads }: ServiceDeps) {
  const passwords = passwordServiceFor(config, argon2Threads)
  const requireVerifiedEmail = config.REQUIRE_EMAIL_VERIFICATION
  const audit = createAuditService({ prisma, now, onError: (error, entry) => reportError(error, `writing audit entry ${entry.action}`) })
  const settings = createSettingsService({ prisma, config, audit, onError: error => reportError(error, 'reloading runtime settings') })
  const throttle = loginThrottleFor(config, prisma, now, identifierKey)
  const codec = createRefreshTokenCodec(refreshKey)
  const issueAccessToken = createAccessTokenIssuer({ sign: signJwt, now, clientId: audienceOf(config) })
  const oneTimeTokens = oneTimeTokenServiceFor(config, prisma, now, oneTimeTokenKey)
  const sessions = createSessionService({ prisma, codec, oneTimeTokens, audit, now })
  const records = createLoginRecords({
    sql,
    codec,
    settings,
    now,
    maxSessionsPerUser: config.MAX_SESSIONS_PER_USER,
    sessionRetentionDays: config.SESSION_RETENTION_DAYS,
    notices: { enabled: config.SIGN_IN_NOTICES, afterFailures: config.LOGIN_BACKOFF_AFTER_FAILURES },
    wakeMail: () => mailDelivery.wake()
  })
  const refresh = createRefreshService({ sql, codec, sessions, settings, issueAccessToken, now, graceSeconds: config.REFRESH_REUSE_GRACE_SECONDS, requireVerifiedEmail, metrics })
  const outbox = createMailOutbox({ prisma, sql, now, wake: () => mailDelivery.wake() })
  const mailDelivery = createMailDelivery({
    prisma,
    outbox,
    oneTimeTokens,
    audit,
    sender: mailSender,
    log: mailLog,
    metrics,
    now,
    links: { passwordReset: mail.passwordResetUrl, emailVerification: mail.emailVerificationUrl },
    ttlSeconds: { passwordReset: config.PASSWORD_RESET_TTL_SECONDS, emailVerification: config.EMAIL_VERIFICATION_TTL_SECONDS },
    retry: { maxAttempts: config.MAIL_MAX_ATTEMPTS, baseSeconds: config.MAIL_RETRY_BASE_SECONDS }
  })
  const emails = createEmailVerificationService({ prisma, oneTimeTokens, outbox, audit, throttle, now })
  const passwordReset = createPasswordResetService({ prisma, passwords, sessions, oneTimeTokens, outbox, audit, throttle, now })
  const credentials = createCredentialService({ prisma, passwords, sessions, oneTimeTokens, outbox, audit, throttle, now })
  const users = createUserService({ prisma, sql, now, passwords, emails, oneTimeTokens, outbox, audit, throttle })
  const issuer = config.MFA_ISSUER ?? new URL(config.PUBLIC_URL).hostname
  const factors = createFactorService({ prisma, outbox, audit, sessions, oneTimeTokens, throttle, sealKeys: totpKeys, issuer, now, reportError })
  const webauthn = webauthnSettingsOf(config)
  const ceremonies = createCeremonyChallenges({ prisma, now })
  const passkeys = createPasskeyService({ prisma, ceremonies, audit, outbox, settings: webauthn, now })
  const assertions = createAssertionVerifier({ prisma, ceremonies, audit, settings: webauthn, now })
  const challenges = createChallengeService({ prisma, factors, passkeys, assertions, throttle, audit, outbox, now })
  const reauthentication = createReauthenticationService({
    prisma, passwords, factors, passkeys, assertions, sessions, throttle, audit, outbox, settings, issueAccessToken, now, maxAgeSeconds: config.REAUTH_MAX_AGE_SECONDS, requireMfaForAdmins: config.REQUIRE_MFA_FOR_ADMINS, requireVerifiedEmail
  })
  const logins = createLoginService({ prisma, passwords, records, settings, audit, issueAccessToken, emails, throttle, challenges, assertions, requireVerifiedEmail, metrics })
  const admin = createAdminService({ prisma, sessions, audit, passwordReset, oneTimeTokens, throttle, outbox, now })
  const deleteAbandonedAccounts = createUnverifiedAccountExpiry({ prisma, audit, throttle })
  const unfinishedSignIns = createUnfinishedSignIns({ prisma, outbox, audit, now })
  const retention = createRetentionService({
    prisma, audit, unfinishedSignIns, now, auditDays: config.AUDIT_RETENTION_DAYS, endedDays: config.SESSION_RETENTION_DAYS, unverifiedDays: config.UNVERIFIED_ACCOUNT_RETENTION_DAYS, deleteAbandonedAccounts
  })
  return { passwords, settings, audit, sessions, refresh, users, logins, admin, emails, passwordReset, credentials, mailDelivery, factors, reauthentication, challenges, passkeys, retention, identifierKeys: throttle.keys }
}

export type Services = ReturnType<typeof createServices>
