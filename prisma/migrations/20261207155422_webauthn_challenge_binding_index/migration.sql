-- CreateIndex: a remedy (a new password; an admin's deactivation, sign-out or removal of factors) ends
-- the user's passkey registrations under way while it holds the user's row; it finds them by
-- their session, not by reading every ceremony of the last five minutes, however many an
-- attack left. The table holds five minutes of ceremonies: the lock this takes is brief.
CREATE INDEX "WebauthnChallenge_bindingId_idx" ON "WebauthnChallenge"("bindingId");
