-- CreateIndex: the retention pass clears, each hour, the email changes whose link ended; it
-- finds the users with a change pending by this index of them alone, not by reading every user.
-- Only a change's request, confirmation or end writes "pendingEmail": a login, a refresh or
-- any other update of a user is as cheap as before. Building it reads "User" once and holds
-- its writes meanwhile (a fraction of a second per million users; README, "Migrations in
-- deploy pipelines").
CREATE INDEX "User_pendingEmail_idx" ON "User"("id") WHERE ("pendingEmail" IS NOT NULL);
