-- Run after a rolling upgrade from a release before the migration
-- 20261206122445_recovery_code_generation, if old and new instances served together, and again
-- after a rollback to such a release and the upgrade that follows (README, "Upgrading"). The
-- recovery codes' rules are the application's, so an old instance neither applied nor
-- honoured them after the migration:
--   1. it removed a factor without ending the codes' generation, so a recovery code proven
--      before could count again for the admin API once a factor was set up after it;
--   2. it kept a passkey-only account's codes past its last passkey, so they stood in for the
--      next one.
-- For every user whose factor was removed since the migration (the audit trail's
-- mfa.totp_removed, passkey.removed, mfa.removed_by_admin and a reset that removed the factors),
-- this ends the recovery-code proofs made before the latest removal (the admin proves a factor
-- again), and deletes the codes made before it when every factor the user has now came after it
-- (none was left then). Running it again changes nothing more.
BEGIN;

CREATE TEMPORARY TABLE factor_removals ON COMMIT DROP AS
SELECT a."subjectId" AS "userId", max(a."createdAt") AS at
FROM "AuditEvent" a
JOIN "_prisma_migrations" m ON m.migration_name = '20261206122445_recovery_code_generation'
WHERE a."subjectId" IS NOT NULL AND a."createdAt" >= (m.started_at AT TIME ZONE 'UTC')
  AND (a.action = 'passkey.removed'
    OR (a.action = 'mfa.totp_removed' AND a.details ->> 'confirmed' = 'true')
    OR (a.action = 'mfa.removed_by_admin' AND a.details ->> 'removed' = 'true')
    OR (a.action = 'password.reset' AND a.details ->> 'secondFactorsRemoved' = 'true'))
GROUP BY a."subjectId";

UPDATE "Session" s SET "recoveryCodeGeneration" = NULL
FROM factor_removals r
WHERE s."userId" = r."userId" AND s."recoveryCodeGeneration" IS NOT NULL AND s."recoveryCodeProvenAt" <= r.at;

DELETE FROM "RecoveryCode" c
USING factor_removals r
WHERE c."userId" = r."userId" AND c."createdAt" <= r.at
  AND NOT EXISTS (SELECT 1 FROM "Passkey" p WHERE p."userId" = r."userId" AND p."createdAt" < r.at)
  AND NOT EXISTS (SELECT 1 FROM "TotpFactor" t WHERE t."userId" = r."userId" AND t."confirmedAt" < r.at);

COMMIT;
