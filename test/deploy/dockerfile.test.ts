// The Dockerfile played without Docker: its build context, its stages' COPY and RUN steps, then the image's CMD, HEALTHCHECK and CLIs against a fresh database.
import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { createEmptyDatabase } from '../helpers/database.js'
import { copyBuildContext, planDockerfile, playPlan, type Stage } from '../helpers/dockerfile.js'
import { startMailServer } from '../helpers/mail.js'
import { freePort } from '../helpers/net.js'
import { startServer, stopServer, waitUntilReady } from '../helpers/process.js'
import { nodeFlags } from '../helpers/program.js'
import { newAccount } from '../helpers/users.js'

const root = join(import.meta.dirname, '..', '..')
const serverUrl = process.env.TEST_DATABASE_URL === '' ? undefined : process.env.TEST_DATABASE_URL
const exec = promisify(execFile)

/** Runs `argv` (exec form) in `stage`'s directory with the image's environment and `env`. */
async function inImage (stage: Stage, argv: string[], env: Record<string, string>, stdin = '') {
  const [command = '', ...args] = argv
  const child = spawn(command, args, { cwd: stage.dir, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...stage.env, ...env } })
  let output = ''
  child.stdout.on('data', chunk => { output += chunk })
  child.stderr.on('data', chunk => { output += chunk })
  child.stdin.end(stdin)
  const [code] = await once(child, 'exit')
  return { code: code as number | null, output }
}

async function filesNamed (dir: string, pattern: RegExp): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter(entry => entry.isFile() && pattern.test(entry.name)).map(entry => join(entry.parentPath, entry.name))
}

// Two npm ci runs and a build: minutes, not seconds. Run once per CI run, in the PostgreSQL
// pass; the production image needs a PostgreSQL server anyway (the embedded one takes one connection).
t.test('the image, built and run from the Dockerfile without Docker', {
  skip: serverUrl === undefined && 'runs in the TEST_DATABASE_URL pass only (slow; production needs a PostgreSQL server)'
}, async t => {
  t.setTimeout(15 * 60_000)
  const work = await mkdtemp(join(tmpdir(), 'auth-image-'))
  t.teardown(() => rm(work, { recursive: true, force: true }))
  const context = join(work, 'context')
  const copied = await copyBuildContext(root, context)
  t.ok(copied.includes('src/server.ts') && copied.includes('prisma/schema.prisma'), 'the context holds the sources')
  t.ok(copied.includes('console/src/main.ts') && copied.includes('packages/client/src/index.ts'), 'and the admin console\'s, with the client library it bundles')
  t.notOk(copied.some(path => path.startsWith('packages/client/') && !path.startsWith('packages/client/src/')), 'but not the client library\'s package or tests')
  t.notOk(copied.some(path => /^(node_modules|dist|\.data|test|\.git)\/|^\.env$|^src\/generated\//.test(path)), 'and nothing the image must not see')

  const plan = planDockerfile(await readFile(join(root, 'Dockerfile'), 'utf8'), join(work, 'stages'))
  t.same(plan.stages.map(stage => stage.name), ['build', 'runtime'], 'a build stage and a runtime stage')
  for (const stage of plan.stages) t.match(stage.image, /^node:(22|24)-slim$/, `${stage.name}: a Node LTS slim base`)
  t.ok(plan.steps.some(step => step.kind === 'run' && step.stage.name === 'runtime' && /npm ci --omit=dev/.test(step.command)), 'the runtime installs production dependencies only')
  // npm reads packages from the local cache first, as the cache mount does in a real build.
  await playPlan(plan, context, { npm_config_prefer_offline: 'true' }, async (step, played) => {
    const label = step.kind === 'run' ? `${step.stage.name}: RUN ${step.command}` : `${step.stage.name}: COPY ${step.from === undefined ? '' : `--from=${step.from} `}${step.sources.join(' ')} ${step.dest}`
    await t.resolves(played, label)
  })

  const runtime = plan.stages.find(stage => stage.name === 'runtime') as Stage
  // The image is complete: whatever changes in it from here on was written at run time.
  const built = join(work, 'built')
  await writeFile(built, '')
  t.equal(runtime.user, 'node', 'runs as the unprivileged node user')
  t.same(runtime.cmd, ['node', ...nodeFlags, 'dist/server.js'], 'node is PID 1, not npm, with the flags of npm start')
  t.match(JSON.parse(await readFile(join(root, 'package.json'), 'utf8')).scripts.start, `node ${nodeFlags.join(' ')} dist/server.js`, 'npm start gives node the same flags')
  t.match(runtime.env, { NODE_ENV: 'production', HOST: '0.0.0.0' })
  for (const name of ['prisma', 'typescript', 'tsx', '@prisma/engines', 'tap']) t.notOk(existsSync(join(runtime.dir, 'node_modules', name)), `no ${name} in the image`)
  t.same(await filesNamed(runtime.dir, /^(schema-engine|query-engine)(?!.*\.(js|wasm|d\.ts|map|json)$)|\.node$/).then(files => files.filter(file => !/@node-rs[/\\]argon2|@napi-rs[/\\]nice/.test(file))), [], 'no native Prisma engine, no native module but argon2 and nice (the hashing threads\' priority)')
  t.notOk(existsSync(join(runtime.dir, 'src')) || existsSync(join(runtime.dir, 'test')), 'no sources, no tests')

  const database = await createEmptyDatabase()
  t.teardown(database.drop)
  const mail = await startMailServer(t)
  const port = await freePort()
  const env = {
    DATABASE_URL: database.url,
    AUTH_SECRET: randomBytes(48).toString('base64'),
    SMTP_URL: mail.url,
    PORT: String(port),
    // Production wants its public origin, https: TLS ends at a proxy, which this test does without.
    PUBLIC_URL: `https://localhost:${port}`
  }

  const migrated = await inImage(runtime, ['npm', 'run', 'db:migrate'], env)
  t.equal(migrated.code, 0, 'npm run db:migrate works with production dependencies only')
  t.match(migrated.output, /Applied \d+ migrations?/)

  const server = startServer({ ...runtime.env, ...env }, { port, entry: join(runtime.dir, 'dist', 'server.js'), cwd: runtime.dir })
  t.teardown(() => stopServer(server))
  await waitUntilReady(server)
  t.match(server.output(), /database schema is up to date/, 'migrations at start find nothing left')
  t.equal((await inImage(runtime, runtime.healthcheck ?? [], env)).code, 0, 'HEALTHCHECK passes')
  const page = await fetch(`${server.baseUrl}/console/`)
  t.equal(page.status, 200, 'the image serves the admin console')
  const script = /src="(assets\/console-[^"]+\.js)"/.exec(await page.text())?.[1] ?? ''
  t.equal((await fetch(`${server.baseUrl}/console/${script}`)).status, 200, 'with its assets')

  const account = newAccount()
  const post = (path: string, body: unknown) => fetch(`${server.baseUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  t.equal((await post('/auth/register', account)).status, 201, 'register')
  const login = await post('/auth/login', { email: account.email, password: account.password })
  t.equal(login.status, 200, 'login')
  t.ok((await login.json() as { accessToken?: string }).accessToken)
  await mail.nextMail(account.email, { subject: /Confirm your email/ })

  const admin = await inImage(runtime, ['npm', 'run', 'admin:create', '--', '--email', 'ops@example.com'], env, 'an operator passphrase\n')
  t.equal(admin.code, 0, `npm run admin:create works in the image: ${admin.output.trim().split('\n').at(-1) ?? ''}`)

  t.equal((await stopServer(server)).code, 0, 'SIGTERM: exit 0')
  t.not((await inImage(runtime, runtime.healthcheck ?? [], env)).code, 0, 'HEALTHCHECK fails once it is down')

  // Regression: the check asked 127.0.0.1 whatever HOST said, so a service listening on one
  // address of its own was never healthy (and compose's proxy, waiting for it, never started).
  const specific = { ...env, HOST: '127.0.0.2' }
  const bound = startServer({ ...runtime.env, ...specific }, { port, entry: join(runtime.dir, 'dist', 'server.js'), cwd: runtime.dir, host: '127.0.0.2' })
  t.teardown(() => stopServer(bound))
  await waitUntilReady(bound)
  t.equal((await inImage(runtime, runtime.healthcheck ?? [], specific)).code, 0, 'HEALTHCHECK passes with HOST set to one address')
  await stopServer(bound)
  // The image's own files stay as they were: no engine was fetched at run time either.
  const { stdout } = await exec('find', [runtime.dir, '-newer', built])
  t.same(stdout.split('\n').filter(line => line !== ''), [], 'nothing written into the image at run time')
})
