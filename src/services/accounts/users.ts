// Accounts: registration, the caller's own user, and profile and email updates.
import { randomUUID } from 'node:crypto'
import type { Static } from '@sinclair/typebox'
import type { RegisterBody } from '../../schemas/auth.js'
import type { UpdateMeBody } from '../../schemas/users.js'
import type { PrismaClient, Transaction } from '../../db/prisma.js'
import type { Sql } from '../../db/sql.js'
import { isRecordNotFound, isUniqueViolation } from '../../db/refusals.js'
import { apiError, missingPasswordForNewEmail } from '../../errors.js'
import { assertStillProven, type CheckedPassword } from '../passwords/checked-password.js'
import type { EmailVerificationService } from './email-verification.js'
import type { MailOutbox } from '../mail/outbox.js'
import type { OneTimeTokenService } from '../tokens/one-time-tokens.js'
import type { PasswordService } from '../passwords/passwords.js'
import { apiUserOfRow, toApiUser, toOwnUser, type ApiUser, type OwnUser } from './api-user.js'
import { insertAccount, liveCallerOf, liveCallerRow, lockUser, updateOwnUser, userById, type RegistrationRows } from './user-store.js'
import type { Role } from './roles.js'
import { canonical } from './canonical.js'
import { isReservedUsername } from './reserved-usernames.js'
import type { LoginThrottle } from '../sessions/login-throttle.js'
import { assertFactorProvenBeside } from '../mfa/held-proofs.js'
import type { Actor, AuditEntry, AuditService } from '../admin/audit.js'

/** A new account, as POST /auth/register takes it. */
export type Registration = Static<ReturnType<typeof RegisterBody>>

/** A change of the caller's own user, as PATCH /users/me takes it (the current password, checked by the route, aside). */
export type MeChanges = Omit<Static<ReturnType<typeof UpdateMeBody>>, 'currentPassword'>

export interface UserDeps {
  prisma: PrismaClient
  sql: Sql
  now: () => Date
  passwords: PasswordService
  emails: EmailVerificationService
  oneTimeTokens: OneTimeTokenService
  outbox: MailOutbox
  audit: Pick<AuditService, 'recordAllIn'>
  throttle: Pick<LoginThrottle, 'move' | 'keys'>
}

export function createUserService ({ prisma, sql, now, passwords, emails, oneTimeTokens, outbox, audit, throttle }: UserDeps) {
  return {
    /**
     * Registers a user with role `user` (see `createAccount`). The verification token, its
     * mail and the `user.registered` entry from `ip` are written in the same statement as the
     * account: the mail is promised once this resolves, and sent off the request path. `admit` sees the canonical address once
     * the password passes the policy, and refuses by throwing (the mail's budget per address).
     */
    async register (input: Registration, ip: string, admit: (email: string) => Promise<void>): Promise<ApiUser> {
      const user = await createAccount({ sql, passwords, now }, input, 'user', false, email => {
        const token = oneTimeTokens.newRow('email_verify', email)
        return { token, mail: outbox.rowOf({ kind: 'verify_email', to: email, tokenId: token.id }), audit: { id: randomUUID(), ip } }
      }, admit)
      outbox.wake()
      return user
    },

    /** The caller's user and second factors, in the same round trip that proves the session is still live. */
    async me (userId: string, sessionId: string): Promise<OwnUser> {
      const row = await liveCallerRow(sql, userId, sessionId, now())
      if (row === null) throw apiError('AUTH_SESSION_REVOKED')
      return { ...apiUserOfRow(row), mfa: { totp: row.totp, recoveryCodesLeft: row.recoveryCodesLeft } }
    },

    /** Which of the fields sent would change: a username or an address other than the user's own (sending one's own address cancels a pending change). */
    async changesOf (userId: string, { username, email }: { username?: string | undefined, email?: string | undefined }): Promise<{ username: boolean, email: boolean }> {
      if (username === undefined && email === undefined) return { username: false, email: false }
      const user = await userById(prisma, userId, { username: true, email: true })
      return {
        username: username !== undefined && user?.username !== canonical(username),
        email: email !== undefined && user?.email !== canonical(email)
      }
    },

    /**
     * Partial update of username, profile and email, all or nothing; only a live session of
     * an active user may write. A new email only becomes pending until the new mailbox
     * confirms it (see EmailVerificationService.stageChange); its mails leave after commit. A
     * rename and a staged address are audited in the same transaction (`ownChangeEntries`).
     * `password`: the current password the route checked, which a new address needs, still the user's.
     */
    async updateMe (actor: Actor & { sessionId: string }, changes: MeChanges, password?: CheckedPassword): Promise<OwnUser> {
      const { userId, sessionId } = actor
      try {
        const row = await prisma.$transaction(async tx => {
          // The user's row first, as every writer of a user's rows takes it: the session check
          // then sees whatever a reset or a revocation committed while this waited, so a change
          // begun before a reset cannot be staged after it.
          await lockUser(tx, userId)
          const current = await liveCallerOf(tx, userId, sessionId, now(), { id: true, email: true, emailVerifiedAt: true, role: true, username: true })
          if (current === null) throw apiError('AUTH_SESSION_REVOKED')
          // A new address needed freshness, checked before this row's lock: beside a factor, one this session proved.
          if (changes.email !== undefined) await assertFactorProvenBeside(tx, userId, sessionId, now())
          const username = changes.username === undefined ? undefined : canonical(changes.username)
          if (username !== undefined && username !== current.username && current.role !== 'admin' && isReservedUsername(username)) throw apiError('USERNAME_TAKEN')
          if (username !== undefined) await moveFailuresToNewName(tx, throttle, current.username, username)
          const requested = changes.email === undefined ? undefined : canonical(changes.email)
          // Judged again under the lock: the route let the current address through without a
          // password as a cancellation, and a confirmed change may have moved it since
          // (regression: sent as the owner's link was followed, it staged the old address back).
          if (requested !== undefined && requested !== current.email) {
            if (password === undefined) throw missingPasswordForNewEmail()
            await assertStillProven(tx, actor, password, now())
          }
          const pendingEmail = requested === undefined ? undefined : await emails.stageChange(tx, current, requested, sessionId)
          const updated = await updateOwnUser(tx, userId, {
            ...(username === undefined ? {} : { username }),
            ...(changes.profile === undefined ? {} : { profile: changes.profile }),
            ...(pendingEmail === undefined ? {} : { pendingEmail })
          }, now())
          await audit.recordAllIn(tx, ownChangeEntries(actor, { usernameWas: current.username, username, pendingEmail }))
          return updated
        })
        if (changes.email !== undefined) outbox.wake()
        return toOwnUser(row)
      } catch (error) {
        if (isUniqueViolation(error)) throw apiError('USERNAME_TAKEN')
        if (isRecordNotFound(error)) throw apiError('AUTH_SESSION_REVOKED')
        throw error
      }
    }
  }
}

export type UserService = ReturnType<typeof createUserService>

/**
 * The entries of the owner's own changes that an investigator of a takeover looks for: a
 * rename (the name given up kept, as for an admin's) and a new address staged. The profile's
 * fields tell nothing of that, and a cancelled change stages nothing: neither is audited.
 */
function ownChangeEntries (actor: Actor, changed: { usernameWas: string | null, username: string | undefined, pendingEmail: string | null | undefined }): AuditEntry[] {
  const entry = { actorId: actor.userId, subjectId: actor.userId, ip: actor.ip }
  const { usernameWas, username, pendingEmail } = changed
  return [
    ...(username === undefined || username === usernameWas ? [] : [{ ...entry, action: 'user.updated' as const, details: { fields: ['username'], usernameWas } }]),
    ...(pendingEmail === undefined || pendingEmail === null ? [] : [{ ...entry, action: 'email.change_requested' as const, details: { to: pendingEmail } }])
  ]
}

/**
 * Creates the user and the profile (and a registration's rows) in one statement, after
 * the password policy. Uniqueness is the database's job, so two concurrent registrations of one email
 * give one account and one USER_EXISTS, never a duplicate or a 500.
 */
export async function createAccount (
  { sql, passwords, now }: Pick<UserDeps, 'sql' | 'passwords' | 'now'>,
  input: Registration,
  role: Role,
  /** The address is vouched for by an operator (the admin CLI), not by a mailed link. */
  verified: boolean,
  /** A registration's first one-time token, its mail and its audit entry, created with the account in the same statement. */
  registration?: (email: string) => RegistrationRows,
  /**
   * Sees the address once the password passes the policy, before the hashing and the write,
   * and refuses by throwing: a password refused for its strength spends no budget of the
   * address (its owner may take a few tries).
   */
  admit?: (email: string) => Promise<void>
): Promise<ApiUser> {
  const email = canonical(input.email)
  const username = input.username === undefined ? null : canonical(input.username)
  if (username !== null && role !== 'admin' && isReservedUsername(username)) throw apiError('USER_EXISTS')
  passwords.checkNew(input.password, [email, username])
  await admit?.(email)
  const passwordHash = await passwords.hash(input.password)
  const createdAt = now()
  const user = { id: randomUUID(), email, username, role, emailVerifiedAt: verified ? createdAt : null, createdAt }
  const displayName = input.displayName ?? null
  try {
    await insertAccount(sql, { ...user, passwordHash, displayName }, registration?.(email))
  } catch (error) {
    if (isUniqueViolation(error)) throw apiError('USER_EXISTS')
    throw error
  }
  return toApiUser({ ...user, pendingEmail: null, updatedAt: user.createdAt, profile: { displayName, bio: null, avatarUrl: null } })
}

/**
 * A rename takes the name's failed logins along: whoever takes the former name next starts
 * with none, as after a deletion (regression: locked out for a day), and the account keeps
 * its wait (a stolen session renaming away and back must not clear it).
 */
export async function moveFailuresToNewName (tx: Transaction, throttle: Pick<LoginThrottle, 'move' | 'keys'>, former: string | null, next: string): Promise<void> {
  if (former !== null && former !== next) await throttle.move(throttle.keys.of(former), throttle.keys.of(next), tx)
}
