// Accounts: registration, the caller's own user, and profile and email updates.
import { Prisma } from '../generated/prisma/client.js'
import type { PrismaClient } from '../db/prisma.js'
import { apiError } from '../errors.js'
import type { EmailVerificationService } from './email-verification.js'
import type { Mailer, OutgoingMail } from './mail.js'
import type { PasswordService } from './passwords.js'
import type { Role } from './roles.js'
import type { SessionService } from './sessions.js'

/** The only columns that ever leave this service: the password hash cannot reach a response. */
export const userSelect = {
  id: true,
  email: true,
  pendingEmail: true,
  username: true,
  role: true,
  emailVerifiedAt: true,
  createdAt: true,
  updatedAt: true,
  profile: { select: { displayName: true, bio: true, avatarUrl: true } }
} satisfies Prisma.UserSelect

type UserRow = Prisma.UserGetPayload<{ select: typeof userSelect }>

export interface ApiUser {
  id: string
  email: string
  pendingEmail: string | null
  username: string | null
  role: string
  emailVerified: boolean
  createdAt: string
  updatedAt: string
  profile: { displayName: string | null, bio: string | null, avatarUrl: string | null }
}

export function toApiUser (row: UserRow): ApiUser {
  const { emailVerifiedAt, createdAt, updatedAt, profile, ...rest } = row
  return {
    ...rest,
    emailVerified: emailVerifiedAt !== null,
    createdAt: createdAt.toISOString(),
    updatedAt: updatedAt.toISOString(),
    profile: profile ?? { displayName: null, bio: null, avatarUrl: null }
  }
}

/** Emails and usernames are compared in one canonical form: NFKC, lower case. */
export function canonical (value: string): string {
  return value.normalize('NFKC').toLowerCase()
}

export interface Registration {
  email: string
  password: string
  username?: string | undefined
  displayName?: string | undefined
}

export interface ProfileChanges {
  username?: string | undefined
  email?: string | undefined
  profile?: { displayName?: string | null, bio?: string | null, avatarUrl?: string | null } | undefined
}

export interface UserDeps {
  prisma: PrismaClient
  passwords: PasswordService
  sessions: SessionService
  emails: EmailVerificationService
  mailer: Mailer
}

export function createUserService ({ prisma, passwords, sessions, emails, mailer }: UserDeps) {
  return {
    /** Registers a user with role `user` (see `createAccount`); the verification mail is queued, never awaited. */
    async register (input: Registration): Promise<ApiUser> {
      const user = await createAccount({ prisma, passwords }, input, 'user')
      emails.sendVerification(user.id, user.email)
      return user
    },

    /** The caller's user, in the same round trip that proves the session is still live. */
    async me (userId: string, sessionId: string): Promise<ApiUser> {
      // One statement (profile joined, session checked in EXISTS): one round trip on a hot path.
      const row = await prisma.user.findFirst({ where: sessions.liveCaller(userId, sessionId), select: userSelect, relationLoadStrategy: 'join' })
      if (row === null) throw apiError('AUTH_SESSION_REVOKED')
      return toApiUser(row)
    },

    /**
     * Partial update of username, profile and email, all or nothing; only a live session of
     * an active user may write. A new email only becomes pending until the new mailbox
     * confirms it (see EmailVerificationService.stageChange); its mails leave after commit.
     */
    async updateMe (userId: string, sessionId: string, changes: ProfileChanges): Promise<ApiUser> {
      const data: Prisma.UserUpdateInput = {}
      if (changes.username !== undefined) data.username = canonical(changes.username)
      if (changes.profile !== undefined) data.profile = { upsert: { create: changes.profile, update: changes.profile } }
      try {
        const { row, mails } = await prisma.$transaction(async tx => {
          const current = await tx.user.findFirst({ where: sessions.liveCaller(userId, sessionId), select: { id: true, email: true } })
          if (current === null) throw apiError('AUTH_SESSION_REVOKED')
          let mails: OutgoingMail[] = []
          if (changes.email !== undefined) {
            const staged = await emails.stageChange(tx, current, canonical(changes.email))
            data.pendingEmail = staged.pendingEmail
            mails = staged.mails
          }
          return { row: await tx.user.update({ where: { id: userId }, data, select: userSelect }), mails }
        })
        for (const mail of mails) mailer.send(mail)
        return toApiUser(row)
      } catch (error) {
        if (isUniqueViolation(error)) throw apiError('USERNAME_TAKEN')
        if (isNotFound(error)) throw apiError('AUTH_SESSION_REVOKED')
        throw error
      }
    }
  }
}

export type UserService = ReturnType<typeof createUserService>

/**
 * Creates the user and the profile in one statement (one transaction), after the password
 * policy. Uniqueness is the database's job, so two concurrent registrations of one email
 * give one account and one USER_EXISTS, never a duplicate or a 500.
 */
export async function createAccount (
  { prisma, passwords }: Pick<UserDeps, 'prisma' | 'passwords'>,
  input: Registration,
  role: Role,
  /** When the address is vouched for by an operator (the admin CLI), not by a mailed link. */
  emailVerifiedAt: Date | null = null
): Promise<ApiUser> {
  const email = canonical(input.email)
  const username = input.username === undefined ? null : canonical(input.username)
  if (passwords.isWeak(input.password, [email, username])) throw apiError('PASSWORD_TOO_WEAK')
  const passwordHash = await passwords.hash(input.password)
  try {
    const row = await prisma.user.create({
      data: { email, username, passwordHash, role, emailVerifiedAt, profile: { create: { displayName: input.displayName ?? null } } },
      select: userSelect
    })
    return toApiUser(row)
  } catch (error) {
    if (isUniqueViolation(error)) throw apiError('USER_EXISTS')
    throw error
  }
}

function isUniqueViolation (error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002'
}

function isNotFound (error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2025'
}
