-- AlterEnum: the notice of a sign-in from a device the account has not used, or after failed
-- attempts; a kind of its own so that an older release (which does not know it) leaves it to a
-- newer instance.
ALTER TYPE "MailKind" ADD VALUE 'new_sign_in';

-- AlterTable: the device a session's sign-in came from. Every session opened before this release
-- (or by an older one beside it) has none, which stands for any device: the upgrade tells nobody
-- of the devices they already use. No default, no table rewrite.
ALTER TABLE "Session" ADD COLUMN     "deviceHash" BYTEA;

-- CreateIndex: a login asks whether the user has a session of its device, in one lookup however
-- many sessions of other devices the user kept. It takes a lock that holds writes to "Session"
-- while it is built (README, "Upgrading").
CREATE INDEX "Session_userId_deviceHash_idx" ON "Session"("userId", "deviceHash");
