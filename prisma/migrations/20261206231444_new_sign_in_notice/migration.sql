-- AlterEnum: the notice of a sign-in from a device the account has not used, or after failed
-- attempts. An older release beside this one claims it as any mail, finds no template, and
-- spends an attempt; a newer instance sends it at a later one (README, "Upgrading").
ALTER TYPE "MailKind" ADD VALUE 'new_sign_in';

-- AlterTable: the device a session's sign-in came from, and whether the session vouches for it.
-- Every session opened before this release (or by an older one beside it) has no device, which
-- stands for any while the session lives: the upgrade tells nobody of the devices they are
-- signed in on. Constant defaults only: no table rewrite.
ALTER TABLE "Session" ADD COLUMN     "deviceHash" BYTEA,
ADD COLUMN     "deviceVouches" BOOLEAN NOT NULL DEFAULT true;

-- AlterTable: when the owner was last mailed of a sign-in, on the row a login locks.
ALTER TABLE "User" ADD COLUMN     "signInNoticeAt" TIMESTAMP(3);

-- CreateIndex: a login asks whether the user has a session of its device, in one lookup however
-- many sessions of other devices the user kept. It takes a lock that holds writes to "Session"
-- while it is built (README, "Upgrading").
CREATE INDEX "Session_userId_deviceHash_idx" ON "Session"("userId", "deviceHash");
