// What a service on PostgreSQL never uses at start is loaded when first needed, not imported at the top of a module: each holds megabytes of heap (docs/benchmarks.md, Memory).
import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import t from 'tap'

const src = join(import.meta.dirname, '..', 'src')

// The module, and the one file allowed to import it statically (null: none may).
const onDemand: Record<string, string | null> = {
  '@simplewebauthn/server': null, // through services/passkeys/webauthn.ts, at the first ceremony
  '@simplewebauthn/server/helpers': null,
  qrcode: null, // at the first TOTP enrolment
  ioredis: null, // with REDIS_URL only
  '@electric-sql/pglite': 'db/embedded.ts', // without DATABASE_URL only
  '@electric-sql/pglite-socket': 'db/embedded.ts',
  './embedded.js': null
}

const entries = await readdir(src, { withFileTypes: true, recursive: true })
const files = await Promise.all(entries
  .filter(entry => entry.isFile() && entry.name.endsWith('.ts') && !entry.parentPath.includes(join(src, 'generated')))
  .map(async entry => ({ path: relative(src, join(entry.parentPath, entry.name)).split('\\').join('/'), text: await readFile(join(entry.parentPath, entry.name), 'utf8') })))

/** Files importing `specifier` for its values at load time: `import … from`, but not `import type` or `import()`. */
const staticImporters = (specifier: string) => files
  .filter(file => [...file.text.matchAll(/^import (?!type\b)[^;]*? from '([^']+)'/gm)].some(match => match[1] === specifier))
  .map(file => file.path)

for (const [specifier, allowed] of Object.entries(onDemand)) {
  t.same(staticImporters(specifier), allowed === null ? [] : [allowed], `${specifier}: loaded on demand`)
}

t.ok(staticImporters('fastify').length > 0, 'the check sees static imports')
