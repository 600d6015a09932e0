-- AlterTable: the session that asked for an email change's link, so that the link works only while
-- it lives, and ends with the change when that session is ended. Links issued before this
-- release, or by an older one beside it, name none and work as before (README, "Upgrading").
-- No default: no table rewrite.
ALTER TABLE "OneTimeToken" ADD COLUMN     "sessionId" UUID;
