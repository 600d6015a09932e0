// What the app reads from a validated config in its own terms: rate limits, mail settings, lists.
import type { Config } from './config.js'

export interface RateLimit {
  max: number
  windowSeconds: number
}

/** Reads a validated "requests/seconds" setting. */
export function rateOf (value: string): RateLimit {
  const [max, windowSeconds] = value.split('/').map(Number)
  return { max: max ?? 1, windowSeconds: windowSeconds ?? 1 }
}

/** Every rate limit in force, by use. */
export function rateLimitsOf (config: Config) {
  return {
    default: rateOf(config.RATE_LIMIT_DEFAULT),
    loginIp: rateOf(config.RATE_LIMIT_LOGIN_IP),
    loginAccount: rateOf(config.RATE_LIMIT_LOGIN_ACCOUNT),
    register: rateOf(config.RATE_LIMIT_REGISTER),
    refresh: rateOf(config.RATE_LIMIT_REFRESH),
    verify: rateOf(config.RATE_LIMIT_VERIFY),
    mail: rateOf(config.RATE_LIMIT_MAIL),
    mailAccount: rateOf(config.RATE_LIMIT_MAIL_ACCOUNT)
  }
}

export type RateLimits = ReturnType<typeof rateLimitsOf>

/** Splits a comma-separated setting into trimmed, non-empty items. */
export function listOf (value: string): string[] {
  return value.split(',').map(item => item.trim()).filter(item => item.length > 0)
}

export interface MailSettings {
  /** The From header of every mail. */
  from: string
  /** Link templates; `{token}` is replaced by the mailed token. */
  passwordResetUrl: string
  emailVerificationUrl: string
}

/** The mail settings in force, with their defaults derived from PUBLIC_URL. */
export function mailSettingsOf (config: Config): MailSettings {
  return {
    from: config.MAIL_FROM ?? `no-reply@${new URL(config.PUBLIC_URL).hostname}`,
    passwordResetUrl: config.PASSWORD_RESET_URL ?? `${config.PUBLIC_URL}/reset-password?token={token}`,
    emailVerificationUrl: config.EMAIL_VERIFICATION_URL ?? `${config.PUBLIC_URL}/verify-email?token={token}`
  }
}
