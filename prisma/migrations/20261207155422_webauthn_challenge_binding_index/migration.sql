-- CreateIndex: a remedy (a new password; a sign-out everywhere, the owner's or an admin's; an
-- admin's deactivation or removal of factors) ends the user's passkey registrations under way
-- while it holds the user's row; it finds them by their session, not by reading every ceremony
-- in the table, however many an attack left. The table holds minutes of ceremonies: the lock
-- this takes, which holds the ceremonies and the remedies, is brief.
CREATE INDEX "WebauthnChallenge_bindingId_idx" ON "WebauthnChallenge"("bindingId");
