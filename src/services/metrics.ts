// What the services report for monitoring: counts of security-relevant outcomes, whatever exports them.

export type LoginMetricResult = 'success' | 'invalid_credentials' | 'email_not_verified' | 'mfa_required'

export interface AuthMetrics {
  /** A login attempt ended: tokens issued, or refused (every kind of bad credentials alike, or an unverified email). */
  login: (result: LoginMetricResult) => void
  /** A refresh ended: new tokens (a grace-window retry included), or refused (invalid, expired, revoked, reused). */
  refresh: (result: 'success' | 'failure') => void
  /** A retired refresh token came back and its session was revoked: a theft signal worth an alert. */
  reuseDetected: () => void
}

export type MailOutcome = 'sent' | 'retry' | 'given_up' | 'dropped'

export interface MailMetrics {
  /** An attempt to send a mail ended: sent, failed with another attempt to come, or failed for good. */
  mail: (outcome: MailOutcome) => void
}
