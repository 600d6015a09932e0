// One owner per embedded data directory: a lock file naming the owning process, and how to reach the database it serves.
import { readFileSync } from 'node:fs'
import { link, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'

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

/** An empty lock file (a process killed between creating and writing it) is stale after this long. */
const UNWRITTEN_GRACE_MS = 5000

/** The process start time of `pid` from /proc (Linux); null elsewhere or when it is gone. */
function startTimeOf (pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Field 22; the command name (field 2) may hold spaces and parentheses, so count after the last ')'.
    const value = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
    return Number.isFinite(value) ? value : null
  } catch {
    return null
  }
}

/**
 * Whether the process that wrote the lock still runs. A lock from another host cannot be
 * checked and counts as live. A pid that runs but started at another time was reused after
 * the owner died (a container restarted, say), as is our own pid.
 */
export function isLive (holder: LockHolder): boolean {
  if (holder.host !== hostname()) return true
  if (holder.pid === process.pid) return false
  try {
    process.kill(holder.pid, 0)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  const startTime = startTimeOf(holder.pid)
  return holder.startTime === null || startTime === null || startTime === holder.startTime
}

function me (): LockHolder {
  return { pid: process.pid, startTime: startTimeOf(process.pid), host: hostname() }
}

/** The lock's holder; undefined when there is no lock; null while its owner has yet to write it. */
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

/**
 * Takes the lock at `path`, or answers who holds it. A lock left by a dead process (killed
 * with SIGKILL, a power cut) is taken over: moved aside atomically, then checked to be the
 * stale one, so that two processes taking over at once cannot both win.
 */
export async function acquireDataDirLock (path: string): Promise<{ lock: DataDirLock } | { holder: LockHolder | null }> {
  const self = me()
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      const file = await open(path, 'wx', 0o600)
      await file.writeFile(JSON.stringify(self))
      await file.close()
      return { lock: lockAt(path, self) }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
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
