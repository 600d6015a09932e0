// The schema engine's glue was written for one engine build: a Prisma upgrade fails here, loudly, until the glue is checked against the new one.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ENGINE_BUILD } from '../../src/db/schema-engine-wasm.js'

// Read from the files: some of these packages do not export their package.json.
const modules = join(import.meta.dirname, '..', '..', 'node_modules')
const versionOf = (name: string): string => (JSON.parse(readFileSync(join(modules, name, 'package.json'), 'utf8')) as { version: string }).version

t.test('the installed engine is the build the glue drives', async t => {
  t.equal(versionOf('@prisma/schema-engine-wasm'), ENGINE_BUILD,
    'Prisma was upgraded: check src/db/schema-engine-wasm.ts (wasm-bindgen exports, the "char" columns, whole scripts, the advisory lock) against the new engine, run test/db/migrations.test.ts, then move ENGINE_BUILD')
})

t.test('the engine, the client, the adapter and the CLI are one Prisma release', async t => {
  const release = ENGINE_BUILD.split('-')[0]
  for (const name of ['prisma', '@prisma/client', '@prisma/adapter-pg', '@prisma/driver-adapter-utils']) {
    t.equal(versionOf(name), release, `${name} belongs to the engine's release`)
  }
})
