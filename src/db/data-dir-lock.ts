// One owner per embedded data directory: a lock file naming the owning process, and how to reach the database it serves.
import { readFileSync } from 'node:fs'
import { link, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'

/** What the lock file says. */
export interface LockHolder {
  pid: number
  /** Linux: the process's start time in clock ticks since boot, which tells a reused pid apart. */
  startTime: number | null
  host: string
  /** Set by an owner that lets other processes in (the running service): its database URL. */
  url?: string
}

export interface DataDirLock {
  /** Records the URL others may reach the database at (the lock is rewritten atomically). */
  publish: (url: string) => Promise<void>
  release: () => Promise<void>
}

/** An unreadable lock file (a power cut before its content reached the disk; an older version cut between creating and writing it) is stale after this long. */
const UNWRITTEN_GRACE_MS = 5000

/** The state (R, S, Z…) and the start time, in clock ticks since boot, of `pid` from /proc (Linux); null elsewhere or when it is gone. */
function procStat (pid: number): { state: string, startTime: number | null } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields 3 and 22; the command name (field 2) may hold spaces and parentheses, so count after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const startTime = Number(fields[19])
    return { state: fields[0] ?? '', startTime: Number.isFinite(startTime) ? startTime : null }
  } catch {
    return null
  }
}

/**
 * Whether the process that wrote the lock still runs. A lock from another host cannot be
 * checked and counts as live. A pid that runs but started at another time was reused after
 * the owner died (a container restarted, say), as is our own pid; a process killed and not
 * yet reaped (a zombie) runs no more; no process has a pid below 1.
 */
export function isLive (holder: LockHolder): boolean {
  if (holder.host !== hostname()) return true
  if (holder.pid === process.pid || !(holder.pid > 0)) return false
  try {
    process.kill(holder.pid, 0)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  const running = procStat(holder.pid)
  if (running === null) return true
  if (running.state === 'Z' || running.state === 'X') return false
  return holder.startTime === null || running.startTime === null || running.startTime === holder.startTime
}

function me (): LockHolder {
  return { pid: process.pid, startTime: procStat(process.pid)?.startTime ?? null, host: hostname() }
}

/** The lock's holder; undefined when there is no lock; null while an unreadable one is recent (see UNWRITTEN_GRACE_MS). */
export async function readHolder (path: string): Promise<LockHolder | null | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
  try {
    return JSON.parse(text) as LockHolder
  } catch {
    const age = Date.now() - (await stat(path).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs
    return age > UNWRITTEN_GRACE_MS ? { pid: -1, startTime: null, host: hostname() } : null
  }
}

const sameHolder = (a: LockHolder | null | undefined, b: LockHolder) => a?.pid === b.pid && a.startTime === b.startTime && a.host === b.host

// How long a new owner waits before it reads its lock once more (see acquireDataDirLock).
const SETTLE_MS = 100

/**
 * Takes the lock at `path`, or answers who holds it. A lock left by a dead process (killed
 * with SIGKILL, a power cut) is taken over: moved aside atomically, then checked to be the
 * stale one, and put back when it was not. That still leaves a gap: with three processes
 * taking over at once, one can move a lock just taken aside while a third creates its own,
 * and fail to put the first back (regression: two owners of one directory, 2 of 10 rounds of
 * five processes). So a new owner reads its lock again a moment later, and gives way when it
 * is no longer its own.
 */
export async function acquireDataDirLock (path: string): Promise<{ lock: DataDirLock } | { holder: LockHolder | null }> {
  const self = me()
  for (let attempt = 0; attempt < 10; attempt++) {
    if (await createWhole(path, self)) {
      await sleep(SETTLE_MS)
      if (sameHolder(await readHolder(path), self)) return { lock: lockAt(path, self) }
      continue
    }
    const holder = await readHolder(path)
    if (holder === undefined) continue
    if (holder === null || isLive(holder)) return { holder }
    const aside = `${path}.${process.pid}.stale`
    try {
      await rename(path, aside)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw error
    }
    // Another process may have taken over between our read and our move: put its lock back.
    if (!sameHolder(await readHolder(aside), holder)) await link(aside, path).catch(() => {})
    await rm(aside, { force: true })
  }
  throw new Error(`cannot take the lock ${path}: it keeps changing hands`)
}

/**
 * Creates the lock file with its content, or answers false when one exists. Written aside,
 * then linked into place: the lock is never seen empty, and a write that fails (a full disk)
 * leaves no lock behind (regression: an empty lock, its writer gone, held the directory for good).
 */
async function createWhole (path: string, self: LockHolder): Promise<boolean> {
  const whole = `${path}.${process.pid}.new`
  try {
    await writeFile(whole, JSON.stringify(self), { mode: 0o600 })
    await link(whole, path)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw error
  } finally {
    await rm(whole, { force: true })
  }
}

function lockAt (path: string, self: LockHolder): DataDirLock {
  return {
    async publish (url) {
      const next = `${path}.${process.pid}.next`
      await writeFile(next, JSON.stringify({ ...self, url }), { mode: 0o600 })
      await rename(next, path)
    },
    async release () {
      // Only our own: never remove a lock that a stale-lock takeover gave to someone else.
      if (sameHolder(await readHolder(path), self)) await rm(path, { force: true })
    }
  }
}
