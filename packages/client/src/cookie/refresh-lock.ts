// One refresh at a time across the tabs of an app (Web Locks), and the news of the last one done.

/** A refresh done: when it completed (ms since the epoch; 0 for none) and the session it landed on, when the service named it. */
export interface RefreshDone {
  at: number
  sessionId: string | undefined
}

export interface RefreshLock {
  /**
   * Runs `task` while no other tab runs one. A lock not granted within the timeout (a tab
   * frozen or stuck while holding it) is given up and the task runs anyway: the service's
   * grace window gives refreshes racing with the same token the same successor.
   */
  run: <T>(task: () => Promise<T>) => Promise<T>
  /** The last refresh any tab recorded, of those not stamped ahead of the clock. */
  lastRefresh: () => Promise<RefreshDone>
  /** Records a refresh that completed here. */
  record: (done: RefreshDone) => Promise<void>
  /** A refresh another tab told of (BroadcastChannel). */
  heard: (done: RefreshDone) => void
  close: () => void
}

const NONE: RefreshDone = { at: 0, sessionId: undefined }

/**
 * The news of a refresh is kept by the lock manager itself, as a shared lock named after its
 * time and session and held until this tab's next refresh: the manager orders it before the
 * release of the refresh lock, so a tab granted that lock next always sees it (a message on a
 * BroadcastChannel may arrive later than the grant). Without Web Locks, only what this tab
 * heard is known.
 */
export function createRefreshLock (name: string, locks: LockManager | null, timeoutMs: number): RefreshLock {
  const markerPrefix = `${name} refreshed at `
  const markerOf = ({ at, sessionId }: RefreshDone) => `${markerPrefix}${at}${sessionId === undefined ? '' : ` of ${sessionId}`}`
  function parseMarker (lockName: string): RefreshDone {
    const [at = '', sessionId] = lockName.slice(markerPrefix.length).split(' of ')
    return { at: Number(at) || 0, sessionId }
  }
  let known = NONE
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
  function remember (done: RefreshDone): void {
    if (known.at > Date.now() || done.at >= known.at) known = done
  }

  // A stamp ahead of the clock is from before the clock was set back: it says nothing of what
  // came after, and would hide every refresh since.
  async function lastRefresh (): Promise<RefreshDone> {
    const now = Date.now()
    const done = [known]
    if (locks !== null) {
      const { held = [] } = await locks.query()
      for (const lock of held) {
        if (lock.name?.startsWith(markerPrefix) === true) done.push(parseMarker(lock.name))
      }
    }
    return done.filter(refresh => refresh.at <= now).reduce((latest, refresh) => refresh.at > latest.at ? refresh : latest, NONE)
  }

  async function record (done: RefreshDone): Promise<void> {
    remember(done)
    if (locks === null) return
    let release = () => {}
    const held = new Promise<void>(resolve => { release = resolve })
    await new Promise<void>(resolve => {
      locks.request(markerOf(done), { mode: 'shared' }, () => {
        resolve()
        return held
      }).catch(() => { resolve() })
    })
    releaseMarker?.()
    releaseMarker = release
  }

  return {
    run,
    lastRefresh,
    record,
    heard: remember,
    close: () => { releaseMarker?.() }
  }
}
