// Tasks that share a key run one after another, in the order they came; tasks of different keys run at once.

/**
 * A login checks its identifier's backoff before the password and records the failure after
 * it: attempts at once all read the same count, and a burst got past the backoff and the
 * lockout. Run one at a time per identifier, each attempt reads what the one before it
 * recorded. Nothing is kept for a key once its last task ends.
 */
export function oneAtATime () {
  const tails = new Map<string, Promise<unknown>>()
  return async function run<T> (key: string, task: () => Promise<T>): Promise<T> {
    const result = (tails.get(key) ?? Promise.resolve()).then(task)
    const tail = result.catch(() => {})
    tails.set(key, tail)
    try {
      return await result
    } finally {
      if (tails.get(key) === tail) tails.delete(key)
    }
  }
}
