-- Run once after a rolling upgrade from a release before the migration
-- 20261206122445_recovery_code_generation, if old and new instances served together, and again
-- after a rollback to such a release and the upgrade that follows (docs/upgrading.md, "Upgrading across a security rule"). The
-- recovery codes' rules are the application's, so an old instance neither applied nor
-- honoured them after the migration:
--   1. it left users with no factor without ending the codes' generation, so a recovery code
--      proven before could count again for the admin API once a factor was set up after;
--   2. it kept a passkey-only account's codes past its last passkey, so they stood in for the
--      next one, and a new instance took them.
-- It reads the audit trail since the migration. This release marks its own removals
-- (details.recoveryCodes); an entry without the mark is an old instance's. For each user, an old
-- removal after which no factor was left (judged from the factors the user has now and the
-- trail's registrations and removals since, allowing for clocks 30 s apart) is a bare moment:
-- the codes made before the latest sure one are deleted, and the recovery-code proofs made before
-- the first set of codes after the latest possible one end (the admin proves a factor again).
-- Running it again at once changes nothing more.
BEGIN;

CREATE TEMPORARY TABLE trail ON COMMIT DROP AS
SELECT a."subjectId" AS "userId", a."createdAt" AS at, a.action, a.details
FROM "AuditEvent" a
JOIN "_prisma_migrations" m ON m.migration_name = '20261206122445_recovery_code_generation'
  AND m.finished_at IS NOT NULL AND m.rolled_back_at IS NULL
WHERE a."subjectId" IS NOT NULL AND a."createdAt" >= (m.started_at AT TIME ZONE 'UTC') - interval '30 seconds'
  AND a.action IN ('passkey.registered', 'passkey.removed', 'mfa.totp_enabled', 'mfa.totp_removed',
    'mfa.recovery_codes_regenerated', 'mfa.removed_by_admin', 'password.reset');
CREATE INDEX ON trail ("userId", at);
ANALYZE trail;

-- Whether a factor was there right after the removal at `removed_at` (`self` is its own entry),
-- as the factors users have now and the trail's registrations and removals since tell, with the
-- instances' clocks `shift` apart: +30 s counts what may have been there, -30 s only what was
-- beyond doubt. Codes go only where no factor may have been there; proofs end unless one
-- surely was (a proof is cheap to make again, a lost code is not). A factor removed within 30 s
-- of it is gone either way: removals that close together leave what the last of them left.
CREATE OR REPLACE FUNCTION pg_temp.factor_there (removed_from uuid, removed_at timestamp, self_action text, self_passkey text, shift interval) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM "Passkey" p WHERE p."userId" = removed_from AND p."createdAt" <= removed_at + shift)
    OR EXISTS (SELECT 1 FROM "TotpFactor" t WHERE t."userId" = removed_from AND t."confirmedAt" <= removed_at + shift)
    OR EXISTS (SELECT 1 FROM trail later WHERE later."userId" = removed_from AND later.at > removed_at + interval '30 seconds'
      AND later.action = 'passkey.removed' AND NOT (self_action = 'passkey.removed' AND later.details ->> 'passkeyId' IS NOT DISTINCT FROM self_passkey)
      AND NOT EXISTS (SELECT 1 FROM trail added WHERE added."userId" = removed_from AND added.action = 'passkey.registered'
        AND added.details ->> 'passkeyId' = later.details ->> 'passkeyId' AND added.at > removed_at + shift AND added.at < later.at))
    OR EXISTS (SELECT 1 FROM trail later WHERE later."userId" = removed_from AND later.at > removed_at + interval '30 seconds'
      AND later.action = 'mfa.totp_removed' AND later.details ->> 'confirmed' = 'true' AND self_action <> 'mfa.totp_removed'
      AND NOT EXISTS (SELECT 1 FROM trail added WHERE added."userId" = removed_from AND added.action = 'mfa.totp_enabled'
        AND added.at > removed_at + shift AND added.at < later.at))
$$;

-- An old instance's removals, and whether each left the user bare: surely (every factor went with
-- it: an admin's removal, a reset that removed them; or none may have been left) or maybe.
CREATE TEMPORARY TABLE old_removals ON COMMIT DROP AS
SELECT r."userId", r.at,
  r.action IN ('mfa.removed_by_admin', 'password.reset') OR NOT pg_temp.factor_there(r."userId", r.at, r.action, r.details ->> 'passkeyId', interval '30 seconds') AS surely,
  r.action IN ('mfa.removed_by_admin', 'password.reset') OR NOT pg_temp.factor_there(r."userId", r.at, r.action, r.details ->> 'passkeyId', interval '-30 seconds') AS maybe
FROM trail r
WHERE r.details ->> 'recoveryCodes' IS NULL
  AND (r.action = 'passkey.removed'
    OR (r.action = 'mfa.totp_removed' AND r.details ->> 'confirmed' = 'true')
    OR (r.action = 'mfa.removed_by_admin' AND r.details ->> 'removed' = 'true')
    OR (r.action = 'password.reset' AND r.details ->> 'secondFactorsRemoved' = 'true'));

CREATE TEMPORARY TABLE bare_moments ON COMMIT DROP AS
SELECT "userId", max(at) FILTER (WHERE surely) AS surely, max(at) FILTER (WHERE maybe) AS maybe
FROM old_removals GROUP BY "userId" HAVING bool_or(maybe);

-- The first set of codes made after the latest moment that may have left the user bare: the
-- proofs before it used codes from before that moment, or none.
CREATE TEMPORARY TABLE stale_proofs ON COMMIT DROP AS
SELECT b."userId", b.surely AS "bareAt", coalesce(least(
  (SELECT min(s.at) FROM trail s WHERE s."userId" = b."userId" AND s.at > b.maybe + interval '30 seconds' AND s.action IN ('mfa.recovery_codes_regenerated', 'mfa.totp_enabled')),
  (SELECT min(c."createdAt") FROM "RecoveryCode" c WHERE c."userId" = b."userId" AND c."createdAt" > b.maybe + interval '30 seconds')), 'infinity') AS "freshSetAt"
FROM bare_moments b;
ANALYZE stale_proofs;

UPDATE "Session" s SET "recoveryCodeGeneration" = NULL
FROM stale_proofs p
WHERE s."userId" = p."userId" AND s."recoveryCodeGeneration" IS NOT NULL AND s."recoveryCodeProvenAt" < p."freshSetAt";

DELETE FROM "RecoveryCode" c
USING stale_proofs p
WHERE c."userId" = p."userId" AND p."bareAt" IS NOT NULL AND c."createdAt" < p."bareAt" + interval '30 seconds';

DROP FUNCTION pg_temp.factor_there (uuid, timestamp, text, text, interval);

COMMIT;
