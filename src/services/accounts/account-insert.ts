// A new account in one statement: the user, their profile and, on registration, the verification token and its mail.
import type { PrismaClient } from '../../db/prisma.js'
import type { MailOutbox } from '../mail/outbox.js'
import type { NewTokenRow } from '../tokens/one-time-tokens.js'

/** The verification token made with an account, and the outbox row of its mail. */
export interface FirstToken {
  token: NewTokenRow
  mail: ReturnType<MailOutbox['rowOf']>
}

export interface NewAccount {
  id: string
  email: string
  username: string | null
  passwordHash: string
  role: string
  emailVerifiedAt: Date | null
  createdAt: Date
  displayName: string | null
}

// Timestamps go in as ISO strings cast to timestamp(3): the UTC wall-clock time, as Prisma stores it.
const USER_AND_PROFILE = `
  WITH u AS (
    INSERT INTO "User" (id, email, username, "passwordHash", role, "emailVerifiedAt", "createdAt", "updatedAt")
    VALUES ($1::uuid, $2, $3, $4, $5::"Role", $6::timestamp(3), $7::timestamp(3), $7::timestamp(3))
    RETURNING id),
  p AS (INSERT INTO "Profile" ("userId", "displayName", "updatedAt") SELECT id, $8, $7::timestamp(3) FROM u)`

const TOKEN_AND_MAIL = `,
  t AS (
    INSERT INTO "OneTimeToken" (id, "userId", purpose, "tokenHash", email, "expiresAt", "createdAt")
    SELECT $9::uuid, id, $10::"TokenPurpose", $11, $12, $13::timestamp(3), $14::timestamp(3) FROM u
    RETURNING id)
  INSERT INTO "OutboxMail" (id, kind, recipient, data, "tokenId", "nextAttemptAt", "createdAt")
  SELECT $15::uuid, $16::"MailKind", $17, $18::jsonb, id, $19::timestamp(3), $7::timestamp(3) FROM t`

/**
 * Nested writes through Prisma's client cost a transaction of six round trips; this is one
 * statement, so one implicit transaction: all of it is written, or none (a taken email).
 */
export async function insertAccount (prisma: PrismaClient, account: NewAccount, first?: FirstToken): Promise<void> {
  const iso = (date: Date | null) => date?.toISOString() ?? null
  const values: unknown[] = [account.id, account.email, account.username, account.passwordHash, account.role, iso(account.emailVerifiedAt), iso(account.createdAt), account.displayName]
  if (first === undefined) {
    await prisma.$executeRawUnsafe(`${USER_AND_PROFILE} SELECT 1`, ...values)
    return
  }
  const { token, mail } = first
  values.push(token.id, token.purpose, token.tokenHash, token.email, iso(token.expiresAt), iso(token.createdAt),
    mail.id, mail.kind, mail.recipient, mail.data === undefined ? null : JSON.stringify(mail.data), iso(mail.nextAttemptAt))
  await prisma.$executeRawUnsafe(`${USER_AND_PROFILE}${TOKEN_AND_MAIL}`, ...values)
}
