// How the admin console is built and served: hashed assets cached for good, the page never, its own strict policy, the size budget, CONSOLE_ENABLED and CONSOLE_PATH.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import t from 'tap'
import { ACCESS_TOKEN_TTL_MAX_SECONDS } from '../../src/config.js'
import { PAGE_CSP } from '../../src/plugins/security-headers.js'
import { lifetimeBounds } from '../../src/services/admin/lifetime-bounds.js'
import { buildConsole } from '../../scripts/build-console.js'
import { buildTestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { logCapture } from '../helpers/mail.js'

const work = await mkdtemp(join(tmpdir(), 'console-build-'))
t.teardown(() => rm(work, { recursive: true, force: true }))
const consoleRoot = join(work, 'console')
const built = await buildConsole({ outDir: consoleRoot })
const database = await createTestDatabase()
t.teardown(database.drop)
const { app } = await buildTestApp(t, { database, consoleRoot })

t.test('the build: hashed names, compressed copies, within 100 KB gzipped', async t => {
  t.ok(built.gzippedBytes > 0 && built.gzippedBytes <= 100 * 1024, `${built.gzippedBytes} bytes gzipped`)
  const assets = built.files.filter(file => file.startsWith('assets/'))
  t.equal(assets.length, 2, 'one script and one style sheet')
  for (const file of assets) t.match(file, /^assets\/console-[A-Z0-9]{8}\.(js|css)$/)
  const again = await buildConsole({ outDir: join(work, 'again') })
  t.same(again.files, built.files, 'the same sources give the same names')
  await t.rejects(buildConsole({ outDir: join(work, 'tiny'), budgetBytes: 1000 }), { name: 'ConsoleBudgetError', message: /over its budget of 1000/ }, 'a build over its budget fails')
})

t.test('the page: no-store, the strict policy, no inline script or style, only its own assets', async t => {
  const redirect = await app.inject({ method: 'GET', url: '/console' })
  t.equal(redirect.statusCode, 301)
  t.equal(redirect.headers.location, '/console/', 'the relative asset URLs need the trailing slash')

  const page = await app.inject({ method: 'GET', url: '/console/' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.equal(page.headers['cache-control'], 'no-store')
  t.equal(page.headers['content-security-policy'], PAGE_CSP)
  t.equal(page.headers['x-frame-options'], 'DENY')
  t.notMatch(PAGE_CSP, /unsafe|data:|\*/, 'no unsafe-inline, unsafe-eval, data: or wildcard source')
  t.match(PAGE_CSP, /script-src 'self'/)
  t.match(PAGE_CSP, /frame-ancestors 'none'/)
  t.notMatch(page.body, /<script(?![^>]*\ssrc=)|<style|\sstyle=|\son[a-z]+=/i, 'no inline script, style or handler')
  const referenced = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map(match => match[1])
  t.same(referenced.sort(), built.files.filter(file => file.startsWith('assets/')).sort(), 'the page loads the built assets and nothing else')

  const health = await app.inject({ method: 'GET', url: '/health' })
  t.match(health.headers['content-security-policy'], /^default-src 'none'/, 'the API keeps its own policy')
})

t.test('assets: cached for a year as immutable, compressed as the browser accepts, 404 for anything else', async t => {
  for (const file of built.files.filter(name => name.startsWith('assets/'))) {
    const plain = await app.inject({ method: 'GET', url: `/console/${file}` })
    t.equal(plain.statusCode, 200, file)
    t.equal(plain.headers['cache-control'], 'public, max-age=31536000, immutable')
    t.equal(plain.headers['content-security-policy'], PAGE_CSP)
    t.equal(plain.body, await readFile(join(consoleRoot, file), 'utf8'))
    const brotli = await app.inject({ method: 'GET', url: `/console/${file}`, headers: { 'accept-encoding': 'br, gzip' } })
    t.equal(brotli.headers['content-encoding'], 'br')
    t.match(brotli.headers.vary, /accept-encoding/i)
    const gzip = await app.inject({ method: 'GET', url: `/console/${file}`, headers: { 'accept-encoding': 'gzip' } })
    t.equal(gzip.headers['content-encoding'], 'gzip')
  }
  const script = await readFile(join(consoleRoot, built.files.find(file => file.endsWith('.js')) as string), 'utf8')
  t.notMatch(script, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/, 'no HTML from strings, no code from strings')
  const missing = await app.inject({ method: 'GET', url: '/console/assets/console-AAAAAAAA.js' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'NOT_FOUND')
  const outside = await app.inject({ method: 'GET', url: '/console/assets/..%2f..%2fpackage.json' })
  t.equal(outside.statusCode, 404, 'nothing outside the assets')
  const page = await app.inject({ method: 'GET', url: '/console/assets/../index.html' })
  t.not(page.headers['cache-control'], 'public, max-age=31536000, immutable', 'the page is never cached as an asset')
})

t.test('CONSOLE_ENABLED=false serves nothing; CONSOLE_PATH moves it; an unbuilt console is a warning and a 404', async t => {
  const off = await buildTestApp(t, { database, consoleRoot, env: { CONSOLE_ENABLED: 'false' } })
  t.equal((await off.app.inject({ method: 'GET', url: '/console/' })).statusCode, 404)

  const moved = await buildTestApp(t, { database, consoleRoot, env: { CONSOLE_PATH: '/ops/console' } })
  t.equal((await moved.app.inject({ method: 'GET', url: '/ops/console/' })).statusCode, 200)
  t.equal((await moved.app.inject({ method: 'GET', url: '/ops/console' })).headers.location, '/ops/console/')
  t.equal((await moved.app.inject({ method: 'GET', url: `/ops/console/${built.files[1] ?? ''}` })).statusCode, 200)
  t.equal((await moved.app.inject({ method: 'GET', url: '/console/' })).statusCode, 404)

  const log = logCapture()
  const unbuilt = await buildTestApp(t, { database, consoleRoot: join(work, 'nothing-here'), logger: pino({ level: 'warn' }, log.stream) })
  t.equal((await unbuilt.app.inject({ method: 'GET', url: '/console/' })).statusCode, 404)
  t.ok(log.lines.some(line => line.level === 40 && /admin console is not built/.test(String(line.msg))), 'the operator is told why')
})

t.test('the console and the API share one definition of the lifetime bounds', async t => {
  t.equal(lifetimeBounds.accessTokenTtlSeconds.maximum, ACCESS_TOKEN_TTL_MAX_SECONDS)
  const spec = (await app.inject({ method: 'GET', url: '/docs/json' })).json()
  t.notOk(Object.keys(spec.paths).some(path => path.startsWith('/console')), 'the console is not part of the API document')
})
