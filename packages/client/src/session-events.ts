// The end of a session, told to whoever listens.

export interface SessionEndEvent {
  /**
   * `logout`: this client logged out (or out of everywhere); `account-deleted`: it deleted the
   * account; `refused`: the service refused the session (revoked, expired, reused, signed out
   * elsewhere), with the service's `code`.
   */
  reason: 'logout' | 'account-deleted' | 'refused'
  code?: string
}

/** May be async: a promise it returns that rejects is reported as a throw is. */
export type SessionEndListener = (event: SessionEndEvent) => void | Promise<void>

export interface SessionEvents {
  /** Calls `listener` whenever a session ends; returns the function that stops it. */
  on: (listener: SessionEndListener) => () => void
  emit: (event: SessionEndEvent) => void
}

export function createSessionEvents (): SessionEvents {
  const listeners = new Set<SessionEndListener>()
  return {
    on (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },
    emit (event) {
      // A copy: a listener added meanwhile (one that adds itself again, say) waits for the next end.
      for (const listener of [...listeners]) notify(listener, event)
    }
  }
}

/**
 * Calls `listener`. Its failure, thrown or a promise it returned that rejects (an async
 * listener whose call to the service failed), is the app's to see as an uncaught error, the
 * same either way, and stops no other listener.
 */
export function notify<A extends unknown[]> (listener: (...args: A) => unknown, ...args: A): void {
  try {
    Promise.resolve(listener(...args)).catch(report)
  } catch (error) {
    report(error)
  }
}

function report (error: unknown): void {
  queueMicrotask(() => { throw error })
}
