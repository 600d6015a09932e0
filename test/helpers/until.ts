// Polling for what a test cannot await directly: a log line, a lock file, a process's output.
import { setTimeout as sleep } from 'node:timers/promises'

/** Resolves once `condition` holds; throws, naming `what`, after `timeoutMs`. */
export async function until (what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}
