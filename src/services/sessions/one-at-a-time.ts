// Tasks that share a key run one after another, in the order they came; tasks of different keys run at once.

/** Nothing is kept for a key once its last task ends (see LoginThrottle.inTurn for why). */
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
