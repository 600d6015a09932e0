// Starting the servers under test as child processes, and reading their peak memory.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'

export interface Server {
  url: string
  process: ChildProcess
  /** Peak resident memory so far (VmHWM), in MB. */
  peakRssMb: () => Promise<number>
  /** CPU time used so far by all its threads (user and system), in microseconds. */
  cpuMicros: () => Promise<number>
  stop: () => Promise<void>
}

// USER_HZ, the unit of /proc's CPU times: 100 on every Linux this runs on (`getconf CLK_TCK`).
const CLOCK_TICKS_PER_SECOND = 100
const started = new Map<string, Server>()

/** The server started here that answers at `url`, if any (not a proxy in front of it). */
export function serverAt (url: string): Server | undefined {
  return started.get(url)
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
  const server: Server = {
    url,
    process: child,
    async peakRssMb () {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8')
      const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0)
      return Math.round(kb / 1024)
    },
    async cpuMicros () {
      // Fields 14 and 15 of /proc/<pid>/stat, after the command name in parentheses (proc(5)).
      const stat = await readFile(`/proc/${child.pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      return (Number(fields[11]) + Number(fields[12])) * 1_000_000 / CLOCK_TICKS_PER_SECOND
    },
    async stop () {
      child.kill('SIGTERM')
      if (child.exitCode === null) await once(child, 'exit')
      started.delete(url)
    }
  }
  started.set(url, server)
  return server
}
