// The real server process, as `npm start` or a container runs it: spawned, awaited until ready, stopped with a signal.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { nodeFlags, programArgs } from './program.js'

export interface ServerProcess {
  child: ChildProcess
  baseUrl: string
  /** Everything it wrote to stdout and stderr so far. */
  output: () => string
  /** Its JSON log lines so far, parsed (other lines skipped). */
  logs: () => Array<Record<string, unknown>>
  /** Resolves with the exit code when it exits. */
  exited: Promise<number | null>
}

export interface StartOptions {
  port: number
  /** Default: the service of this checkout (see program.ts). Another built entry (a container's dist/server.js) runs with `npm start`'s flags. */
  entry?: string
  cwd?: string
  /** Where the test reaches it: the HOST it was given when that is one address of its own. Default 127.0.0.1. */
  host?: string
}

/** Starts the server with only `env` (and PATH) in its environment. */
export function startServer (env: Record<string, string>, { port, entry, cwd, host = '127.0.0.1' }: StartOptions): ServerProcess {
  let output = ''
  const args = entry === undefined ? programArgs('server') : [...nodeFlags, entry]
  const child = spawn(process.execPath, args, {
    // Hashing at normal priority, as in testConfig: timings must not hang on the machine's load.
    // No drain before a shutdown unless a test asks for one: the test's own keep-alive
    // connections would hold every stop for the whole drain.
    env: { PATH: process.env.PATH, PORT: String(port), LOG_LEVEL: 'info', ARGON2_NICE: '0', SHUTDOWN_DRAIN_SECONDS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd === undefined ? {} : { cwd })
  })
  child.stdout?.on('data', chunk => { output += chunk })
  child.stderr?.on('data', chunk => { output += chunk })
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  return {
    child,
    baseUrl: `http://${host}:${port}`,
    output: () => output,
    logs: () => output.split('\n').flatMap(line => {
      try {
        const parsed: unknown = JSON.parse(line)
        return typeof parsed === 'object' && parsed !== null ? [parsed as Record<string, unknown>] : []
      } catch {
        return []
      }
    }),
    exited
  }
}

/** Polls GET /ready until it answers 200; fails with the server's output otherwise. */
export async function waitUntilReady (server: ServerProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) throw new Error(`server exited: ${server.output()}`)
    try {
      const response = await fetch(`${server.baseUrl}/ready`)
      if (response.ok) return
    } catch {}
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  throw new Error(`server did not become ready: ${server.output()}`)
}

/** Sends SIGTERM (unless the test already has: a second one means "exit now") and waits for the exit. */
export async function stopServer (server: ServerProcess): Promise<{ code: number | null, ms: number }> {
  const started = Date.now()
  if (!server.child.killed && server.child.exitCode === null) server.child.kill('SIGTERM')
  const code = await server.exited
  return { code, ms: Date.now() - started }
}

/** A JSON POST to the running server, as a client sends it. */
export function postJson (server: ServerProcess, path: string, body: unknown): Promise<Response> {
  return fetch(`${server.baseUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
}
