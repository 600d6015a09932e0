// One refresh at a time across the tabs of an app (Web Locks), and the news of the last one done.

export interface RefreshLock {
  /**
   * Runs `task` while no other tab runs one. A lock not granted within the timeout (a tab
   * frozen or stuck while holding it) is given up and the task runs anyway: the service's
   * grace window gives refreshes racing with the same token the same successor.
   */
  run: <T>(task: () => Promise<T>) => Promise<T>
  /** When the last refresh any tab recorded completed (ms since the epoch; 0 if none known), of those not ahead of the clock. */
  lastRefreshAt: () => Promise<number>
  /** Records a refresh that completed here at `at`. */
  record: (at: number) => Promise<void>
  /** A refresh another tab told of (BroadcastChannel). */
  heard: (at: number) => void
  close: () => void
}

/**
 * The news of a refresh is kept by the lock manager itself, as a shared lock named after its
 * time and held until this tab's next refresh: the manager orders it before the release of
 * the refresh lock, so a tab granted that lock next always sees it (a message on a
 * BroadcastChannel may arrive later than the grant). Without Web Locks, only what this tab
 * heard is known.
 */
export function createRefreshLock (name: string, locks: LockManager | null, timeoutMs: number): RefreshLock {
  const markerPrefix = `${name} refreshed at `
  let known = 0
  let releaseMarker: (() => void) | undefined

  async function run<T> (task: () => Promise<T>): Promise<T> {
    if (locks === null) return task()
    const controller = new AbortController()
    const timer = setTimeout(() => { controller.abort() }, timeoutMs)
    try {
      return await locks.request(name, { signal: controller.signal }, () => {
        clearTimeout(timer)
        return task()
      })
    } catch (error) {
      if (controller.signal.aborted) return task()
      throw error
    } finally {
      clearTimeout(timer)
    }
  }

  /** The latest refresh told or done here; one stamped ahead of the clock gives way to any since. */
  function remember (at: number): void {
    known = known > Date.now() ? at : Math.max(known, at)
  }

  // A stamp ahead of the clock is from before the clock was set back: it says nothing of what
  // came after, and would hide every refresh since.
  async function lastRefreshAt (): Promise<number> {
    const now = Date.now()
    const stamps = [known]
    if (locks !== null) {
      const { held = [] } = await locks.query()
      for (const lock of held) {
        if (lock.name?.startsWith(markerPrefix) === true) stamps.push(Number(lock.name.slice(markerPrefix.length)) || 0)
      }
    }
    return Math.max(0, ...stamps.filter(at => at <= now))
  }

  async function record (at: number): Promise<void> {
    remember(at)
    if (locks === null) return
    let release = () => {}
    const held = new Promise<void>(resolve => { release = resolve })
    await new Promise<void>(resolve => {
      locks.request(markerPrefix + at, { mode: 'shared' }, () => {
        resolve()
        return held
      }).catch(() => { resolve() })
    })
    releaseMarker?.()
    releaseMarker = release
  }

  return {
    run,
    lastRefreshAt,
    record,
    heard: remember,
    close: () => { releaseMarker?.() }
  }
}
