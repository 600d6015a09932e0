-- AlterTable
ALTER TABLE "Session" ADD COLUMN     "totpProvenEnrolmentId" UUID;

-- AlterTable
ALTER TABLE "TotpFactor" ADD COLUMN     "enrolmentId" UUID NOT NULL DEFAULT gen_random_uuid();

-- A code of the authenticator app proven before this release counted while proven since the app
-- was confirmed: such proofs keep counting, for that app.
UPDATE "Session" s SET "totpProvenEnrolmentId" = t."enrolmentId"
FROM "TotpFactor" t
WHERE t."userId" = s."userId" AND t."confirmedAt" IS NOT NULL AND s."totpProvenAt" >= t."confirmedAt";
