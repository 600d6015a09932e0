// A LockManager after the Web Locks API, in memory, for unit tests: exclusive and shared modes, abort while waiting, query.

interface Waiting {
  name: string
  mode: LockMode
  grant: (lock: Lock) => void
}

export function createLockManager (): LockManager {
  const held: Lock[] = []
  const queue: Waiting[] = []

  const grantable = ({ name, mode }: Waiting) => held.every(lock => lock.name !== name || (mode === 'shared' && lock.mode === 'shared'))

  // Requests for one name are granted in the order they came.
  function pump (): void {
    const blocked = new Set<string>()
    for (const waiting of [...queue]) {
      if (blocked.has(waiting.name) || !grantable(waiting)) {
        blocked.add(waiting.name)
        continue
      }
      queue.splice(queue.indexOf(waiting), 1)
      const lock = { name: waiting.name, mode: waiting.mode }
      held.push(lock)
      waiting.grant(lock)
    }
  }

  async function request (name: string, ...args: [LockGrantedCallback<unknown>] | [LockOptions, LockGrantedCallback<unknown>]): Promise<unknown> {
    const [options, callback] = args.length === 1 ? [{}, args[0]] : args
    const lock = await new Promise<Lock>((resolve, reject) => {
      const waiting = { name, mode: options.mode ?? 'exclusive', grant: resolve }
      options.signal?.addEventListener('abort', () => {
        const index = queue.indexOf(waiting)
        if (index === -1) return
        queue.splice(index, 1)
        reject(new DOMException('The request was aborted', 'AbortError'))
      })
      queue.push(waiting)
      pump()
    })
    try {
      return await callback(lock)
    } finally {
      held.splice(held.indexOf(lock), 1)
      pump()
    }
  }

  return {
    request,
    query: async () => ({
      held: held.map(({ name, mode }) => ({ name, mode, clientId: 'test' })),
      pending: queue.map(({ name, mode }) => ({ name, mode, clientId: 'test' }))
    })
  } as unknown as LockManager
}
