-- AlterTable
ALTER TABLE "Session" ADD COLUMN     "recoveryCodeGeneration" INTEGER;

-- AlterTable
ALTER TABLE "User" ADD COLUMN     "secondFactorGeneration" INTEGER NOT NULL DEFAULT 0;

-- A recovery code proven before this release counted, under the rule it was proven under, while
-- proven since the authenticator app it came with was confirmed: such proofs keep counting.
UPDATE "Session" s SET "recoveryCodeGeneration" = 0
FROM "TotpFactor" t
WHERE t."userId" = s."userId" AND t."confirmedAt" IS NOT NULL AND s."recoveryCodeProvenAt" >= t."confirmedAt";
