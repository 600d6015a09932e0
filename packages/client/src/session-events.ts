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

export type SessionEndListener = (event: SessionEndEvent) => void

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
      for (const listener of [...listeners]) {
        try {
          listener(event)
        } catch (error) {
          // One listener's failure is the app's to see, and stops no other listener.
          queueMicrotask(() => { throw error })
        }
      }
    }
  }
}
