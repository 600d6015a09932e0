-- The backfill of 20261205093000_passkey_proofs_backfill named the admin's one passkey as the
-- one a session had proven. Where a passkey of theirs was removed after the proof and before
-- the backfill, the proof may have been of the removed one, and the session kept the admin API
-- that removing it takes away: name none there (the admin proves a passkey once more).
-- Proofs made since the backfill name their passkey themselves and are left alone.
DO $$
BEGIN
  -- The shadow database that checks the migrations against the schema has no history (nor data).
  IF to_regclass('_prisma_migrations') IS NULL THEN
    RETURN;
  END IF;
  UPDATE "Session" s
  SET "passkeyProvenId" = NULL
  FROM "_prisma_migrations" m
  WHERE m.migration_name = '20261205093000_passkey_proofs_backfill'
    AND s."passkeyProvenId" IS NOT NULL
    AND s."passkeyProvenAt" < (m.finished_at AT TIME ZONE 'UTC')
    AND EXISTS (
      SELECT FROM "AuditEvent" a
      WHERE a.action = 'passkey.removed' AND a."subjectId" = s."userId"
        AND a."createdAt" > s."passkeyProvenAt" AND a."createdAt" < (m.finished_at AT TIME ZONE 'UTC')
    );
END
$$;
