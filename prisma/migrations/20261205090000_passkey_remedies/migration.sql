-- A passkey signs in alone until a new password suspends it (until it is proven again on a
-- session), and a session remembers which passkey it proved, so that removing that passkey
-- takes back what the proof gave. Sessions opened before this migration proved no known
-- passkey: an admin who signed in by passkey proves one again under REQUIRE_MFA_FOR_ADMINS.

-- AlterTable
ALTER TABLE "Passkey" ADD COLUMN     "passwordless" BOOLEAN NOT NULL DEFAULT true;

-- AlterTable
ALTER TABLE "Session" ADD COLUMN     "passkeyProvenId" TEXT;
