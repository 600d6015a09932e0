// The embedded data directory: its lock, taken over from whoever can no longer hold it and never from a live owner, and its files, this user's alone.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { pino } from 'pino'
import { loadConfig, loadDatabaseConfig } from '../../src/config.js'
import { resolveAuthSecret } from '../../src/dev-secret.js'
import { acquireDataDirLock } from '../../src/db/data-dir-lock.js'
import { openDatabase } from '../../src/db/open.js'

async function lockPath (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'auth-lock-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return join(dir, 'pglite.lock')
}

const startTimeOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19])

/** A process that runs for the test, and the lock it would have written. */
async function liveProcess (t: { teardown: (fn: () => unknown) => void }): Promise<{ pid: number, lock: string }> {
  const other = spawn('sleep', ['30'])
  t.teardown(() => { other.kill('SIGKILL') })
  await once(other, 'spawn')
  const pid = other.pid as number
  return { pid, lock: JSON.stringify({ pid, startTime: startTimeOf(pid), host: hostname() }) }
}

t.test('a lock is written whole, and released by its owner', async t => {
  const path = await lockPath(t)
  const taken = await acquireDataDirLock(path)
  t.ok('lock' in taken, 'taken')
  t.match(JSON.parse(await readFile(path, 'utf8')), { pid: process.pid, host: hostname() })
  if ('lock' in taken) await taken.lock.release()
  await t.rejects(readFile(path), { code: 'ENOENT' }, 'released')
})

t.test('an empty lock file left a while ago is stale: taken over (regression: read as process -1, which counted as running, for good)', async t => {
  const path = await lockPath(t)
  await writeFile(path, '')
  const minuteAgo = new Date(Date.now() - 60_000)
  await utimes(path, minuteAgo, minuteAgo)
  const taken = await acquireDataDirLock(path)
  t.ok('lock' in taken, 'taken over')
  t.match(JSON.parse(await readFile(path, 'utf8')), { pid: process.pid })
  if ('lock' in taken) await taken.lock.release()
})

t.test('an empty lock file just created is a taker at work: left alone', async t => {
  const path = await lockPath(t)
  await writeFile(path, '')
  t.same(await acquireDataDirLock(path), { holder: null })
})

t.test('a lock whose owner was killed and not yet reaped (a zombie) is stale (regression: a restart right after a kill refused)', {
  skip: process.platform !== 'linux' && 'reads /proc'
}, async t => {
  // The shell starts a child and becomes `sleep`, which never reaps it: the child, once done, stays a zombie.
  const parent = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] })
  t.teardown(() => { parent.kill('SIGKILL') })
  const [line] = await once(parent.stdout, 'data') as [Buffer]
  const zombie = Number(line.toString().trim())
  for (let i = 0; i < 200 && !readFileSync(`/proc/${zombie}/stat`, 'utf8').includes(') Z '); i++) await new Promise(resolve => setTimeout(resolve, 20))
  t.match(readFileSync(`/proc/${zombie}/stat`, 'utf8'), /\) Z /, 'a zombie')
  const path = await lockPath(t)
  await writeFile(path, JSON.stringify({ pid: zombie, startTime: startTimeOf(zombie), host: hostname() }))
  const taken = await acquireDataDirLock(path)
  t.ok('lock' in taken, 'taken over')
  if ('lock' in taken) await taken.lock.release()
})

t.test('a lock of a live process is never taken over', async t => {
  const path = await lockPath(t)
  const { pid, lock } = await liveProcess(t)
  await writeFile(path, lock)
  t.match(await acquireDataDirLock(path), { holder: { pid } })
})

t.test('the data directory and the database files in it are this user\'s alone (regression: every user could read and write them)', async t => {
  const root = await mkdtemp(join(tmpdir(), 'auth-files-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const modeOf = async (path: string) => (await stat(path)).mode & 0o777
  // A database directory made by an earlier version, open to every user.
  const dataDir = join(root, 'earlier')
  await mkdir(join(dataDir, 'pglite'), { recursive: true, mode: 0o755 })
  await chmod(join(dataDir, 'pglite'), 0o755)
  const database = await openDatabase(loadDatabaseConfig({ DATA_DIR: dataDir }), 'tool')
  t.teardown(() => database.stop())
  t.equal(await modeOf(join(dataDir, 'pglite')), 0o700, 'the database directory, made earlier, is closed')
  // Whichever makes DATA_DIR first: the development secret does, before the database.
  const fresh = join(root, 'fresh')
  await resolveAuthSecret(loadConfig({ DATA_DIR: fresh, NODE_ENV: 'development' }), pino({ level: 'silent' }))
  t.equal(await modeOf(fresh), 0o700, 'a data directory made now is closed')
})

t.test('a new owner whose lock another process replaced at once gives way (regression: three processes taking over a stale lock at once left two owners)', async t => {
  const path = await lockPath(t)
  const { pid, lock } = await liveProcess(t)
  const taking = acquireDataDirLock(path)
  // What a third process's takeover leaves, moments after this one wrote its lock.
  await new Promise(resolve => setTimeout(resolve, 20))
  await writeFile(`${path}.other`, lock)
  await rename(`${path}.other`, path)
  t.match(await taking, { holder: { pid } }, 'it answers who holds the lock, and does not take it')
})
