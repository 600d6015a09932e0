// Removes from a production install what npm keeps only as optional peers of production packages.
//
// `npm ci --omit=dev` still installs packages that package-lock.json marks `devOptional`:
// dev dependencies that a production package also names as an optional peer. Here that is
// the prisma CLI (an optional peer of @prisma/client, with install scripts that download a
// native engine) and typescript, with their own dependencies: about 200 MB the service never
// loads. Run from the directory holding package-lock.json and node_modules.
import { readdir, readFile, rm, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'

const lock = JSON.parse(await readFile('package-lock.json', 'utf8'))
const removable = Object.entries(lock.packages)
  .filter(([path, entry]) => path.startsWith('node_modules/') && entry.devOptional === true)
  .map(([path]) => path)
for (const path of removable) await rm(path, { recursive: true, force: true })

// Their commands (node_modules/.bin/prisma, tsc, …) now point nowhere.
const bin = join('node_modules', '.bin')
for (const name of await readdir(bin).catch(() => [])) {
  const exists = await stat(join(bin, name)).then(() => true, () => false)
  if (!exists) await unlink(join(bin, name))
}
console.log(`prune-dev-optional: removed ${removable.length} packages that production code never loads`)
