// Every action the audit trail records: the audit list filters by these. No imports: the console bundles this file.
export const auditActions = [
  'login.succeeded', 'login.failed', 'login.second_step_unfinished', 'refresh.reuse_detected', 'logout.succeeded',
  'password.changed', 'password.check_failed', 'password.reset', 'password.reset_sent', 'password.reset_requested',
  'email.verified', 'email.change_requested', 'email.changed',
  'user.registered', 'user.role_changed', 'user.deactivated', 'user.activated', 'user.updated', 'user.deleted',
  'session.revoked', 'sessions.revoked', 'settings.changed',
  'mfa.totp_enrolment_started', 'mfa.totp_enabled', 'mfa.totp_removed', 'mfa.removed_by_admin',
  'mfa.recovery_codes_regenerated', 'mfa.recovery_code_used', 'mfa.code_failed', 'mfa.challenge_issued',
  'reauthentication.succeeded', 'reauthentication.failed',
  'passkey.registered', 'passkey.renamed', 'passkey.removed', 'passkey.failed', 'passkey.counter_regressed'
] as const

export type AuditAction = (typeof auditActions)[number]
