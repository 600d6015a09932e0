// Password hashing (argon2id on libuv's thread pool, never on the event loop) and password policy.
import { hash, verify, parseOptions, type Options } from '@node-rs/argon2'
import { dictionary } from '@zxcvbn-ts/language-common'
import pLimit from 'p-limit'

export interface PasswordSettings {
  memoryKiB: number
  timeCost: number
  parallelism: number
  /** Hashes computed at once; the others wait in line. */
  concurrency: number
}

// `Algorithm` is an ambient const enum, which isolated modules cannot read: 2 is Argon2id.
const ARGON2ID = 2

const commonPasswords = new Set(dictionary['passwords-common'].map(p => p.toLowerCase()))

function isCommon (password: string): boolean {
  return commonPasswords.has(normalizePassword(password).toLowerCase())
}

/**
 * NIST SP 800-63B-4 3.1.1.2: any unicode, normalised (NFC) before hashing so the same
 * password typed on two keyboards matches; no composition rules.
 */
export function normalizePassword (password: string): string {
  return password.normalize('NFC')
}

export function createPasswordService (settings: PasswordSettings) {
  // Set explicitly: the library's documented defaults and its code have disagreed.
  const options: Options = {
    algorithm: ARGON2ID,
    memoryCost: settings.memoryKiB,
    timeCost: settings.timeCost,
    parallelism: settings.parallelism
  }
  // Each hash takes a core and `memoryKiB` for its whole run. More of them at once than there
  // are cores would only hold more memory and crowd out the event loop's thread, which also
  // needs a core to keep every other request fast during a login storm (docs/benchmarks.md).
  const inLine = pLimit(settings.concurrency)
  const run = <T>(work: () => Promise<T>) => inLine(work)
  // Hash of a random value, verified against for unknown users so that a login costs the
  // same whether or not the account exists (no user enumeration by timing).
  const decoyHash = run(async () => await hash(crypto.randomUUID(), options))

  return {
    hash (password: string): Promise<string> {
      return run(async () => await hash(normalizePassword(password), options))
    },

    /** Constant work: an unparsable stored hash is a failed match, never an exception. */
    async verify (storedHash: string, password: string): Promise<boolean> {
      try {
        return await run(async () => await verify(storedHash, normalizePassword(password)))
      } catch {
        return false
      }
    },

    /** Spends the same argon2 work as `verify` and always fails: used for unknown accounts. */
    async verifyDecoy (password: string): Promise<false> {
      const decoy = await decoyHash
      await run(async () => await verify(decoy, normalizePassword(password)))
      return false
    },

    /** True when the hash was made with weaker parameters than configured (re-hash on login). */
    needsRehash (storedHash: string): boolean {
      try {
        const used = parseOptions(storedHash)
        return used.algorithm !== ARGON2ID || used.memoryCost < settings.memoryKiB ||
          used.timeCost < settings.timeCost || used.parallelism < settings.parallelism
      } catch {
        return true
      }
    },

    /** Hashes being computed, and hashes waiting for their turn. */
    queue: () => ({ active: inLine.activeCount, waiting: inLine.pendingCount }),

    /** NIST SP 800-63B-4 3.1.1.2: refuse passwords found in lists of commonly used ones. */
    isCommon,

    /**
     * The policy for every new password (registration, change, reset), beyond the length
     * bounds the schemas enforce: not a common password, and not the account's own email or
     * username (compared in their canonical form).
     */
    isWeak (password: string, own: ReadonlyArray<string | null>): boolean {
      return isCommon(password) || own.includes(password.normalize('NFKC').toLowerCase())
    }
  }
}

export type PasswordService = ReturnType<typeof createPasswordService>
