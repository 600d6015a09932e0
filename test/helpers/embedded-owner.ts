// One embedded data directory and the real processes that take turns owning it (the service, db:migrate, admin), for the tests of the lock between them.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readHolder, type LockHolder } from '../../src/db/data-dir-lock.js'
import { freePort } from './net.js'
import { postJson, startServer, type ServerProcess } from './process.js'
import { programArgs } from './program.js'

export interface Run { child: ChildProcess, output: () => string, done: Promise<number | null> }

const cheap = { ARGON2_MEMORY_KIB: '1024', ARGON2_TIME_COST: '1', ARGON2_NICE: '0' }

/** A data directory of the test's own, removed (and every process still running killed) at its end. */
export async function embeddedOwners (t: { teardown: (fn: () => unknown) => void }) {
  const dataDir = await mkdtemp(join(tmpdir(), 'auth-owner-'))
  const lockFile = join(dataDir, 'pglite.lock')
  const env = { DATA_DIR: dataDir, COOKIE_SECURE: 'false', ...cheap }
  const running = new Set<ChildProcess>()
  t.teardown(async () => {
    for (const child of running) child.kill('SIGKILL')
    await rm(dataDir, { recursive: true, force: true })
  })

  return {
    lockFile,

    /** A command of package.json, with `env` only. */
    command (script: 'admin' | 'db-migrate', args: string[], stdin = ''): Run {
      const child = spawn(process.execPath, [...programArgs(`cli/${script}`), ...args], { env: { PATH: process.env.PATH, ...env } })
      running.add(child)
      let output = ''
      child.stdout?.on('data', chunk => { output += chunk })
      child.stderr?.on('data', chunk => { output += chunk })
      child.stdin?.end(stdin)
      const done = once(child, 'exit').then(([code]) => { running.delete(child); return code as number | null })
      return { child, output: () => output, done }
    },

    async service (): Promise<ServerProcess> {
      const server = startServer(env, { port: await freePort() })
      running.add(server.child)
      server.exited.then(() => running.delete(server.child)).catch(() => {})
      return server
    },

    /**
     * What the lock file says: the owner's pid, and the URL it shares the database on (a
     * service). Read as the processes read it.
     */
    lockHolder: async (): Promise<Partial<LockHolder>> => await readHolder(lockFile) ?? {}
  }
}

export const login = (server: ServerProcess, email: string, password: string) => postJson(server, '/auth/login', { email, password })
