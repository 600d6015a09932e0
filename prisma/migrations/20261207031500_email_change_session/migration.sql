-- AlterTable: the session that staged a pending email change, so that ending that session as not
-- the owner's ends the change too. Changes staged before this release name none, and end only
-- by the remedies that ended them before (README, "Upgrading"). No default: no table rewrite.
ALTER TABLE "User" ADD COLUMN     "pendingEmailSessionId" UUID;
