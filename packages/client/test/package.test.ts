// What `npm pack` of the client library holds. Running the pack itself builds the package (some ten
// seconds of esbuild and TypeScript), so this reads the manifest that decides it instead.
import { readFile } from 'node:fs/promises'
import t from 'tap'

type Exports = Record<string, { types: string, default: string }>
const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
  scripts: Record<string, string>
  files: string[]
  exports: Exports
}

// Regression: `npm pack -w @auth-service/client` packed the README and package.json alone, as
// nothing had built dist/.
t.test('packing builds the package first, and packs what the build writes', async t => {
  t.equal(manifest.scripts.prepack, 'npm run build')
  t.match(manifest.scripts.build, /scripts\/build\.mjs/)
  t.same(manifest.files, ['dist'])
  for (const [entry, targets] of Object.entries(manifest.exports)) {
    for (const target of Object.values(targets)) t.match(target, /^\.\/dist\//, `${entry}: ${target}`)
  }
})
