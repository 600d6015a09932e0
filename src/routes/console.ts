// The admin console's static files (built by `npm run build`): hashed assets cached for good, the page never, under a policy of its own.
import { existsSync } from 'node:fs'
import { join, sep } from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'
import { PAGE_CSP } from '../plugins/security-headers.js'

export interface ConsoleRoutesOptions {
  /** The build output: index.html and assets/. */
  root: string
  /** CONSOLE_PATH, like /console. */
  path: string
}

// Asset names carry a hash of their content (scripts/build-console.ts): a new build is a new URL.
const IMMUTABLE = 'public, max-age=31536000, immutable'

/** Where `npm run build` puts the console: dist/console at the project's root, from src/routes and dist/routes alike. */
export const CONSOLE_BUILD_DIR = join(import.meta.dirname, '..', '..', 'dist', 'console')

export async function consoleRoutes (app: FastifyInstance, { root, path }: ConsoleRoutesOptions) {
  if (!existsSync(join(root, 'index.html'))) {
    app.log.warn({ root }, `the admin console is not built (npm run build): ${path} answers 404`)
    return
  }
  // After the service-wide headers (plugins/security-headers.ts), in this scope only.
  app.addHook('onRequest', (_request, reply, done) => {
    reply.header('content-security-policy', PAGE_CSP)
    done()
  })

  // The page's asset URLs are relative, so it must be read from `${path}/`.
  app.get(path, { schema: { hide: true } }, (_request, reply) => reply.redirect(`${path}/`, 301))
  app.get(`${path}/`, { schema: { hide: true } }, (_request, reply) => reply.sendFile('index.html', root))

  const assets = join(root, 'assets')
  await app.register(fastifyStatic, {
    root: assets,
    prefix: `${path}/assets/`,
    // Brotli or gzip files written by the build, chosen by Accept-Encoding.
    preCompressed: true,
    index: false,
    cacheControl: false,
    // The page is never cached: it names the current build's assets, and a deploy must reach every browser at once.
    setHeaders: (reply, file) => { reply.header('cache-control', file.startsWith(assets + sep) ? IMMUTABLE : 'no-store') }
  })
}
