-- Run once after a rolling upgrade from a release before the migration
-- 20261205090000_passkey_remedies, if old and new instances served together (docs/upgrading.md,
-- "Upgrading across a security rule"). A new password suspends passkey sign-in without a password; the rule is the
-- application's, so an old instance neither applied nor honoured it after the migration:
--   1. a password changed or reset on an old instance left the user's passkeys signing in alone;
--   2. an old instance let a suspended passkey sign in alone, and the session lives on.
-- This suspends the passkeys of every user whose password changed since the migration and ends
-- their sessions opened without a password since. Run it once: run again later, it would also
-- suspend the passkeys given back since (by a sign-in with the new password) and end the
-- sessions they have opened alone since, the owner's own.
BEGIN;

CREATE TEMPORARY TABLE new_passwords ON COMMIT DROP AS
SELECT a."subjectId" AS "userId", max(a."createdAt") AS at
FROM "AuditEvent" a
JOIN "_prisma_migrations" m ON m.migration_name = '20261205090000_passkey_remedies'
WHERE a.action IN ('password.changed', 'password.reset') AND a."subjectId" IS NOT NULL
  AND a."createdAt" >= (m.started_at AT TIME ZONE 'UTC')
GROUP BY a."subjectId";

UPDATE "Passkey" p SET passwordless = false
FROM new_passwords n
WHERE p."userId" = n."userId" AND p.passwordless;

UPDATE "Session" s SET "revokedAt" = now() AT TIME ZONE 'UTC', "revokedReason" = 'password_change'
FROM new_passwords n
WHERE s."userId" = n."userId" AND s."revokedAt" IS NULL
  AND s."createdAt" > n.at AND NOT ('pwd' = ANY (s.amr));

COMMIT;
