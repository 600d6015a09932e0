// Every query of the Passkey table: the owner's view, the descriptors of options, a ceremony's credential, its use and its removal.
import type { Db } from '../../db/prisma.js'

/** What a passkey's owner sees of it (never the public key). */
export interface PasskeyView {
  id: string
  name: string
  createdAt: Date
  lastUsedAt: Date | null
  backedUp: boolean
  transports: string[]
  aaguid: string
  /** Whether it signs in alone (see the Passkey model): false after a new password, until it serves as the second step of a sign-in with it. */
  passwordless: boolean
}

const viewSelect = { id: true, name: true, createdAt: true, lastUsedAt: true, backedUp: true, transports: true, aaguid: true, passwordless: true } as const

/** A verified registration, as it is stored. */
export interface NewPasskey {
  id: string
  publicKey: Uint8Array<ArrayBuffer>
  counter: bigint
  transports: string[]
  backedUp: boolean
  deviceType: string
  aaguid: string
}

export async function hasPasskey (db: Db, userId: string): Promise<boolean> {
  return await passkeyCount(db, userId) > 0
}

export async function passkeyCount (db: Db, userId: string): Promise<number> {
  return db.passkey.count({ where: { userId } })
}

/** All of them, oldest first: registration keeps a user's passkeys few (MAX_PASSKEYS_PER_USER), so no page is needed. */
export async function passkeysOf (db: Db, userId: string): Promise<PasskeyView[]> {
  return db.passkey.findMany({ where: { userId }, select: viewSelect, orderBy: { createdAt: 'asc' } })
}

/** The user's passkeys as credential descriptors: what options list to allow or exclude (all of them: a ceremony cannot use one left out). */
export async function descriptorsOf (db: Db, userId: string) {
  return (await db.passkey.findMany({ where: { userId }, select: { id: true, transports: true }, orderBy: { createdAt: 'asc' } }))
    .map(({ id, transports }) => ({ id, transports }))
}

/** Stores a new passkey. A known credential id fails on the primary key. */
export async function insertPasskey (db: Db, userId: string, passkey: NewPasskey, name: string, at: Date): Promise<PasskeyView> {
  return db.passkey.create({ data: { ...passkey, userId, name, createdAt: at }, select: viewSelect })
}

/**
 * Renames a passkey of `userId`; null when they have none of that id. One statement: a removal
 * committed between a write and a read after it left nothing to read (regression: a 500).
 */
export async function renamePasskey (db: Db, userId: string, id: string, name: string): Promise<PasskeyView | null> {
  const [renamed] = await db.passkey.updateManyAndReturn({ where: { id, userId }, data: { name }, select: viewSelect })
  return renamed ?? null
}

/** Deletes a passkey of `userId` (run it in a transaction); its name and its owner's address, or null when they have none of that id. */
export async function deletePasskey (db: Db, userId: string, id: string): Promise<{ name: string, email: string } | null> {
  const removed = await db.passkey.findFirst({ where: { id, userId }, select: { name: true, user: { select: { email: true } } } })
  const { count } = await db.passkey.deleteMany({ where: { id, userId } })
  return removed === null || count === 0 ? null : { name: removed.name, email: removed.user.email }
}

/** Deletes every passkey of the user; how many there were. */
export async function deleteAllPasskeys (db: Db, userId: string): Promise<number> {
  return (await db.passkey.deleteMany({ where: { userId } })).count
}

/**
 * The credential an assertion names, only among `userId`'s passkeys when the user is known,
 * with what a passwordless sign-in must check: the account's state, and its password hash and
 * sign-out count, which the session then opens under (a new password or a remedy meanwhile
 * wins, see openSession).
 */
export async function credentialOf (db: Db, id: string, userId: string | null) {
  const found = await db.passkey.findFirst({
    where: { id, ...(userId === null ? {} : { userId }) },
    select: { id: true, userId: true, publicKey: true, counter: true, passwordless: true, user: { select: { isActive: true, passwordHash: true, signOutGeneration: true } } }
  })
  // Prisma reads the user in a query of its own: an account deleted in between has none
  // (regression: a 500 reading its state).
  return found?.user == null ? null : found
}

/**
 * What a use does to passwordless sign-in (see the Passkey model): a passwordless sign-in
 * needs it still on when the use is written (a new password committed since the check wins);
 * the second step of a password sign-in gives it back; any other use leaves it as it is.
 */
type PasswordlessRule = 'required' | 'restored' | 'kept'

/** Records a use, conditional on the counter read before it: of two uses racing with one value, one passes. */
export async function recordUse (db: Db, stored: { id: string, counter: bigint }, use: { counter: bigint, backedUp: boolean, at: Date, passwordless: PasswordlessRule }): Promise<boolean> {
  const { count } = await db.passkey.updateMany({
    where: { id: stored.id, counter: stored.counter, ...(use.passwordless === 'required' ? { passwordless: true } : {}) },
    data: { counter: use.counter, backedUp: use.backedUp, lastUsedAt: use.at, ...(use.passwordless === 'restored' ? { passwordless: true } : {}) }
  })
  return count === 1
}

/** Whether the passkey signs in alone now; null when it is gone. */
export async function passwordlessOf (db: Db, id: string): Promise<boolean | null> {
  return (await db.passkey.findUnique({ where: { id }, select: { passwordless: true } }))?.passwordless ?? null
}

/** A new password's remedy (see the Passkey model): none of the user's passkeys signs in alone any more. */
export async function suspendPasswordless (db: Db, userId: string): Promise<void> {
  await db.passkey.updateMany({ where: { userId, passwordless: true }, data: { passwordless: false } })
}
