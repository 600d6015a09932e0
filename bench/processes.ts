// Starting the servers under test as child processes, and reading their peak memory.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'

export interface Server {
  url: string
  process: ChildProcess
  /** Peak resident memory so far (VmHWM), in MB. */
  peakRssMb: () => Promise<number>
  stop: () => Promise<void>
}

/** Starts `args` with node and waits until `readyPath` answers 200. */
export async function startServer (args: string[], env: Record<string, string>, port: number, readyPath: string): Promise<Server> {
  const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH, ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout?.on('data', chunk => { output += chunk })
  child.stderr?.on('data', chunk => { output += chunk })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited:\n${output}`)
    if (Date.now() > deadline) throw new Error(`${args.join(' ')} did not start:\n${output}`)
    const ok = await fetch(url + readyPath).then(r => r.ok, () => false)
    if (ok) break
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  return {
    url,
    process: child,
    async peakRssMb () {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8')
      const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0)
      return Math.round(kb / 1024)
    },
    async stop () {
      child.kill('SIGTERM')
      if (child.exitCode === null) await once(child, 'exit')
    }
  }
}
