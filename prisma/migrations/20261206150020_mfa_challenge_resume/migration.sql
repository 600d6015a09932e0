-- AlterTable
ALTER TABLE "MfaChallenge" ADD COLUMN     "proof" JSONB,
ADD COLUMN     "sessionId" UUID;
