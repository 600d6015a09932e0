-- Run once after a rolling upgrade from a release before the migration
-- 20261206122445_recovery_code_generation, if old and new instances served together, and again
-- after a rollback to such a release and the upgrade that follows (README, "Upgrading"). The
-- recovery codes' rules are the application's, so an old instance neither applied nor
-- honoured them after the migration:
--   1. it removed a factor without ending the codes' generation, so a recovery code proven
--      before could count again for the admin API once a factor was set up after it;
--   2. it kept a passkey-only account's codes past its last passkey, so they stood in for the
--      next one, and a new instance took them.
-- From the audit trail's removals since the migration (mfa.totp_removed, passkey.removed,
-- mfa.removed_by_admin, a reset that removed the factors) and the factors users have now:
--   - a removal after which no factor the user has now was there left the user bare: the codes
--     made before the latest such moment are deleted (when the trail cannot tell, they go, and
--     the user makes a new set);
--   - the recovery-code proofs made before a removal end, and every later one too where a code
--     made before a bare moment was used after it (the admin proves a factor again).
BEGIN;

CREATE TEMPORARY TABLE factor_removals ON COMMIT DROP AS
SELECT a."subjectId" AS "userId", a."createdAt" AS at
FROM "AuditEvent" a
JOIN "_prisma_migrations" m ON m.migration_name = '20261206122445_recovery_code_generation'
WHERE a."subjectId" IS NOT NULL AND a."createdAt" >= (m.started_at AT TIME ZONE 'UTC')
  AND (a.action = 'passkey.removed'
    OR (a.action = 'mfa.totp_removed' AND a.details ->> 'confirmed' = 'true')
    OR (a.action = 'mfa.removed_by_admin' AND a.details ->> 'removed' = 'true')
    OR (a.action = 'password.reset' AND a.details ->> 'secondFactorsRemoved' = 'true'));

-- A factor set up in the same millisecond as a removal counts as there after it.
CREATE TEMPORARY TABLE bare_moments ON COMMIT DROP AS
SELECT r."userId", max(r.at) AS at
FROM factor_removals r
WHERE NOT EXISTS (SELECT 1 FROM "Passkey" p WHERE p."userId" = r."userId" AND p."createdAt" <= r.at)
  AND NOT EXISTS (SELECT 1 FROM "TotpFactor" t WHERE t."userId" = r."userId" AND t."confirmedAt" <= r.at)
GROUP BY r."userId";

UPDATE "Session" s SET "recoveryCodeGeneration" = NULL
WHERE s."recoveryCodeGeneration" IS NOT NULL AND (
  EXISTS (SELECT 1 FROM factor_removals r WHERE r."userId" = s."userId" AND s."recoveryCodeProvenAt" <= r.at)
  OR EXISTS (SELECT 1 FROM bare_moments b JOIN "RecoveryCode" c ON c."userId" = b."userId"
    WHERE b."userId" = s."userId" AND c."createdAt" < b.at AND c."usedAt" > b.at));

DELETE FROM "RecoveryCode" c
USING bare_moments b
WHERE c."userId" = b."userId" AND c."createdAt" < b.at;

COMMIT;
