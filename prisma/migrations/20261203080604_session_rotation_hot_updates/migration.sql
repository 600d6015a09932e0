-- A refresh rewrites "lastUsedAt" (and "idleExpiresAt", "generation", "rotatedAt", ip) of its
-- session. With "lastUsedAt" in an index, every refresh wrote a new entry into both of the
-- table's indexes; with no rewritten column indexed, PostgreSQL writes the row's new version on
-- its own page and touches no index (a heap-only tuple, "HOT"). A user's live sessions are few
-- (the session cap), so ordering them by "lastUsedAt" needs no index.
--
-- The new index is built before the old one goes: while it builds, sessions can still be read
-- (only logins and refreshes wait), and the old index's exclusive lock lasts until the commit.

-- CreateIndex
CREATE INDEX "Session_userId_revokedAt_idx" ON "Session"("userId", "revokedAt");

-- DropIndex
DROP INDEX "Session_userId_revokedAt_lastUsedAt_idx";

-- A heap-only update needs free room on the row's own page: leave a fifth of each page for it.
ALTER TABLE "Session" SET (fillfactor = 80);
