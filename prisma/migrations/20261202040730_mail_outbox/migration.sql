-- CreateEnum
CREATE TYPE "MailKind" AS ENUM ('verify_email', 'confirm_email_change', 'email_change_notice', 'password_reset', 'password_changed');

-- CreateTable
CREATE TABLE "OutboxMail" (
    "id" UUID NOT NULL,
    "kind" "MailKind" NOT NULL,
    "recipient" TEXT NOT NULL,
    "data" JSONB,
    "tokenId" UUID,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "OutboxMail_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "OutboxMail_nextAttemptAt_idx" ON "OutboxMail"("nextAttemptAt");

-- CreateIndex
CREATE INDEX "OutboxMail_tokenId_idx" ON "OutboxMail"("tokenId");

-- AddForeignKey
ALTER TABLE "OutboxMail" ADD CONSTRAINT "OutboxMail_tokenId_fkey" FOREIGN KEY ("tokenId") REFERENCES "OneTimeToken"("id") ON DELETE CASCADE ON UPDATE CASCADE;
