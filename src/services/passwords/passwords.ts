// Password hashing (argon2id on threads of the lowest priority, never on the event loop) and password policy.
import { parseOptions, type Options } from '@node-rs/argon2'
import { Piscina } from 'piscina'
import { apiError } from '../../errors.js'
import { isGuessable } from './guessable.js'

export interface PasswordSettings {
  memoryKiB: number
  timeCost: number
  parallelism: number
  /** Hashes computed at once, one per thread; the others wait in line. */
  concurrency: number
  /** Hashes that may wait in that line; past them, 503 (see `run` below). */
  maxWaiting: number
  /** The hashing threads' nice value (Linux): 19, the lowest priority, unless said otherwise. */
  nice?: number
  /** PASSWORD_MIN_LENGTH and PASSWORD_MAX_LENGTH, counted on the password as it is hashed (see `checkNewPassword`). */
  minLength: number
  maxLength: number
}

// The worker's module next to this one, copied into dist by the build.
const ARGON2_WORKER = new URL('./argon2-worker.cjs', import.meta.url).href

/** What a hashing thread is asked to do (argon2-worker.cjs). */
export type Argon2Task =
  /** `configured`: at the configured parameters, so its time is what checks are held to (argon2-worker.cjs). */
  | { op: 'hash', password: string, options: Options, configured?: boolean }
  /** `padTo`: the stored hash was made with less work than these options: held to their time. */
  | { op: 'verify', hash: string, password: string, configured?: boolean, padTo?: Options }

// `Algorithm` is an ambient const enum, which isolated modules cannot read: 2 is Argon2id.
const ARGON2ID = 2

/**
 * NIST SP 800-63B-4 3.1.1.2: any unicode, normalised (NFC) before hashing so the same
 * password typed on two keyboards matches; no composition rules.
 */
function normalizePassword (password: string): string {
  return password.normalize('NFC')
}

export type Argon2Threads = Piscina<Argon2Task, string | boolean>

/**
 * The threads that hash. Each hash takes a whole core and `memoryKiB` for its run, so there
 * are no more threads than `concurrency` (by default the cores); the other hashes wait in
 * line. The threads run at the lowest CPU priority by default (nice 19, on Linux): during a
 * login storm the event loop and the database always get a core first, and every other
 * request stays fast, while the hashes still take every cycle nobody else wants
 * (docs/benchmarks.md). The price: on a machine kept busy by other processes, logins wait
 * for them too (ARGON2_NICE).
 */
export function createArgon2Threads ({ concurrency, nice }: Pick<PasswordSettings, 'concurrency' | 'nice'>): Argon2Threads {
  return new Piscina<Argon2Task, string | boolean>({
    filename: ARGON2_WORKER,
    minThreads: concurrency,
    maxThreads: concurrency,
    niceIncrement: nice ?? 19
  })
}

/**
 * `shared`: threads that outlive this service (the tests' apps share one per process);
 * without them, the service starts its own and ends them on `close`.
 */
export function createPasswordService (settings: PasswordSettings, shared?: Argon2Threads) {
  // Set explicitly: the library's documented defaults and its code have disagreed.
  const options: Options = {
    algorithm: ARGON2ID,
    memoryCost: settings.memoryKiB,
    timeCost: settings.timeCost,
    parallelism: settings.parallelism
  }
  const threads = shared ?? createArgon2Threads(settings)
  /**
   * A hash that would wait behind `maxWaiting` others is refused at once (503 with
   * Retry-After) rather than queued: when requests for hashes come faster than the threads
   * work, an unbounded line grows until every answer comes after its client has given up,
   * and the threads then hash only for nobody. Refused, the surplus costs nothing, and the
   * hashes that do run are answered in time. It tells nothing about accounts: an unknown
   * one's decoy hash waits in the same line.
   */
  const run = async (task: Argon2Task) => {
    if (threads.queueSize >= settings.maxWaiting) throw apiError('SERVICE_UNAVAILABLE')
    return await threads.run(task)
  }
  const hash = async (password: string) => await run({ op: 'hash', password, options, configured: true }) as string
  const verify = async (stored: string, password: string) => {
    const cost = costOf(stored, settings)
    return await run({ op: 'verify', hash: stored, password, configured: cost === 'configured', ...(cost === 'less' ? { padTo: options } : {}) }) as boolean
  }
  // Hash of a random value, verified against for unknown users so that a login costs the
  // same whether or not the account exists (no user enumeration by timing).
  const decoyHash = hash(crypto.randomUUID())

  return {
    hash (password: string): Promise<string> {
      return hash(normalizePassword(password))
    },

    /**
     * Constant time: an unparsable stored hash is a failed match, never an exception, and it or
     * a hash made with less work than configured is held, on its thread, to the time a check at
     * the configured parameters takes there (argon2-worker.cjs), so either answers as an unknown
     * account's decoy check does (regression: a wrong password for an account not rehashed since
     * the parameters rose answered sooner, and showed the account). One task, one place in the
     * line. A full line (503) is not a failed match: it must not count toward anyone's backoff.
     */
    async verify (storedHash: string, password: string): Promise<boolean> {
      return await verify(storedHash, normalizePassword(password))
    },

    /** Spends the same argon2 work as `verify` and always fails: used for unknown accounts. */
    async verifyDecoy (password: string): Promise<false> {
      await verify(await decoyHash, normalizePassword(password))
      return false
    },

    /** True when the hash was made with weaker parameters than configured (re-hash on login). */
    needsRehash: (storedHash: string): boolean => costOf(storedHash, settings) === 'less',

    /** Hashes waiting for a thread. */
    waiting: () => threads.queueSize,

    /** Ends the hashing threads (unless shared) once their work is done. */
    async close (): Promise<void> {
      await decoyHash.catch(() => {})
      if (shared === undefined) await threads.close()
    },

    /** Throws unless `password` may become an account's password (see `checkNewPassword`). */
    checkNew: (password: string, own: ReadonlyArray<string | null>): void => checkNewPassword(password, own, settings)
  }
}

/**
 * How `storedHash` was made beside the configured parameters: `less` when not with argon2id, or
 * with less of any of memory, passes and lanes, or unreadable (re-hashed at the next login, and
 * its check held to a configured one's time); `configured` when with exactly them (its check
 * times the configured work); `more` otherwise.
 */
function costOf (storedHash: string, settings: Pick<PasswordSettings, 'memoryKiB' | 'timeCost' | 'parallelism'>): 'less' | 'configured' | 'more' {
  let used: Options
  try {
    used = parseOptions(storedHash)
  } catch {
    return 'less'
  }
  const { memoryCost = 0, timeCost = 0, parallelism = 0 } = used
  if (used.algorithm !== ARGON2ID || memoryCost < settings.memoryKiB || timeCost < settings.timeCost || parallelism < settings.parallelism) return 'less'
  return memoryCost === settings.memoryKiB && timeCost === settings.timeCost && parallelism === settings.parallelism ? 'configured' : 'more'
}

/**
 * The policy for every new password (registration, change, reset): `minLength` to `maxLength`
 * characters once normalised (NFC), as it is hashed. What was typed may count otherwise: an
 * accent typed as a combining mark counts twice as typed and once as hashed, and a keyboard
 * that decomposes (NFD) types a Korean syllable as up to three characters, so the schemas
 * bound what was typed more loosely (`typedPasswordLimit`). Nothing a guesser tries first
 * (see `isGuessable`): a common password or the account's own email or username, in any of the
 * variants guessers try. Past the maximum, VALIDATION_FAILED; otherwise PASSWORD_TOO_WEAK.
 */
function checkNewPassword (password: string, own: ReadonlyArray<string | null>, { minLength, maxLength }: Pick<PasswordSettings, 'minLength' | 'maxLength'>): void {
  const length = [...normalizePassword(password)].length
  if (length > maxLength) throw apiError('VALIDATION_FAILED', `the password must have at most ${maxLength} characters once normalised (NFC)`)
  if (length < minLength || isGuessable(password, own)) throw apiError('PASSWORD_TOO_WEAK')
}

export type PasswordService = ReturnType<typeof createPasswordService>
