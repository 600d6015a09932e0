-- AlterTable: the one access token of a session that counts as freshly authenticated, the one its
-- latest authentication answered. Sessions opened before this release have none: their next
-- sensitive change asks for a reauthentication (README, "Upgrading"). No default: no table rewrite.
ALTER TABLE "Session" ADD COLUMN     "freshTokenId" UUID;
