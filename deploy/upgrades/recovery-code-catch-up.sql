-- Run once after a rolling upgrade from a release before the migration
-- 20261206122445_recovery_code_generation, if old and new instances served together, and again
-- after a rollback to such a release and the upgrade that follows (README, "Upgrading"). The
-- recovery codes' rules are the application's, so an old instance neither applied nor
-- honoured them after the migration:
--   1. it left users with no factor without ending the codes' generation, so a recovery code
--      proven before could count again for the admin API once a factor was set up after;
--   2. it kept a passkey-only account's codes past its last passkey, so they stood in for the
--      next one, and a new instance took them.
-- It reads the audit trail since the migration. This release marks its own removals
-- (details.recoveryCodes); an entry without the mark is an old instance's. For each user, the
-- latest old removal after which no factor was left (judged from the factors the user has now
-- and the trail's registrations and removals since) is the user's bare moment: the codes made
-- before it are deleted, and the recovery-code proofs made before the first set of codes after
-- it end (the admin proves a factor again). Running it again changes nothing more.
BEGIN;

CREATE TEMPORARY TABLE trail ON COMMIT DROP AS
SELECT a."subjectId" AS "userId", a."createdAt" AS at, a.action, a.details
FROM "AuditEvent" a
JOIN "_prisma_migrations" m ON m.migration_name = '20261206122445_recovery_code_generation'
  AND m.finished_at IS NOT NULL AND m.rolled_back_at IS NULL
WHERE a."subjectId" IS NOT NULL AND a."createdAt" >= (m.started_at AT TIME ZONE 'UTC')
  AND a.action IN ('passkey.registered', 'passkey.removed', 'mfa.totp_enabled', 'mfa.totp_removed',
    'mfa.recovery_codes_regenerated', 'mfa.removed_by_admin', 'password.reset');
CREATE INDEX ON trail ("userId", at);
ANALYZE trail;

-- An old instance's removals that left no factor: every factor removed with it (an admin's
-- removal, a reset that removed them), or none left that the user has now or the trail shows
-- removed later having been there then.
CREATE TEMPORARY TABLE bare_moments ON COMMIT DROP AS
SELECT r."userId", max(r.at) AS at
FROM trail r
WHERE r.details ->> 'recoveryCodes' IS NULL
  AND ((r.action = 'mfa.removed_by_admin' AND r.details ->> 'removed' = 'true')
    OR (r.action = 'password.reset' AND r.details ->> 'secondFactorsRemoved' = 'true')
    OR ((r.action = 'passkey.removed' OR (r.action = 'mfa.totp_removed' AND r.details ->> 'confirmed' = 'true'))
      AND NOT EXISTS (SELECT 1 FROM "Passkey" p WHERE p."userId" = r."userId" AND p."createdAt" <= r.at)
      AND NOT EXISTS (SELECT 1 FROM "TotpFactor" t WHERE t."userId" = r."userId" AND t."confirmedAt" <= r.at)
      AND NOT EXISTS (SELECT 1 FROM trail later WHERE later."userId" = r."userId" AND later.at > r.at
        AND later.action = 'passkey.removed' AND later.details ->> 'passkeyId' IS DISTINCT FROM r.details ->> 'passkeyId'
        AND NOT EXISTS (SELECT 1 FROM trail added WHERE added."userId" = r."userId" AND added.action = 'passkey.registered'
          AND added.details ->> 'passkeyId' = later.details ->> 'passkeyId' AND added.at > r.at))
      AND NOT EXISTS (SELECT 1 FROM trail later WHERE later."userId" = r."userId" AND later.at > r.at
        AND later.action = 'mfa.totp_removed' AND later.details ->> 'confirmed' = 'true' AND r.action = 'passkey.removed'
        AND NOT EXISTS (SELECT 1 FROM trail added WHERE added."userId" = r."userId" AND added.action = 'mfa.totp_enabled'
          AND added.at > r.at AND added.at < later.at))))
GROUP BY r."userId";

-- The first set of codes made after it: the proofs before it used codes from before the bare moment, or none.
CREATE TEMPORARY TABLE stale_proofs ON COMMIT DROP AS
SELECT b."userId", b.at AS "bareAt", coalesce(least(
  (SELECT min(s.at) FROM trail s WHERE s."userId" = b."userId" AND s.at > b.at AND s.action IN ('mfa.recovery_codes_regenerated', 'mfa.totp_enabled')),
  (SELECT min(c."createdAt") FROM "RecoveryCode" c WHERE c."userId" = b."userId" AND c."createdAt" > b.at)), 'infinity') AS "freshSetAt"
FROM bare_moments b;
ANALYZE stale_proofs;

UPDATE "Session" s SET "recoveryCodeGeneration" = NULL
FROM stale_proofs p
WHERE s."userId" = p."userId" AND s."recoveryCodeGeneration" IS NOT NULL AND s."recoveryCodeProvenAt" < p."freshSetAt";

DELETE FROM "RecoveryCode" c
USING stale_proofs p
WHERE c."userId" = p."userId" AND c."createdAt" < p."bareAt";

COMMIT;
