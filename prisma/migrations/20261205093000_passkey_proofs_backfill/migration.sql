-- Sessions opened before "passkeyProvenId" existed name no passkey, so under
-- REQUIRE_MFA_FOR_ADMINS an admin signed in by passkey would lose the admin API at the upgrade.
-- Where the user has exactly one passkey and the session proved a passkey after it was
-- registered (the rule until now), the proof was of that one: name it.
UPDATE "Session" s
SET "passkeyProvenId" = p.id
FROM (
  SELECT "userId", min(id) AS id, min("createdAt") AS "createdAt"
  FROM "Passkey" GROUP BY "userId" HAVING count(*) = 1
) p
WHERE s."userId" = p."userId" AND s."passkeyProvenId" IS NULL
  AND s."passkeyProvenAt" IS NOT NULL AND s."passkeyProvenAt" >= p."createdAt";
