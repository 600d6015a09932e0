// How a test runs one of the service's programs (the server, a command-line tool) as a process of its own: the
// built file, with the flags `npm start` gives node, when `npm run build` made it from the sources as they are now;
// else the source through tsx. CI builds before it tests, so there the tests run what users run, without tsx's
// start-up (about 2 s of CPU a process); a source edited since the last build is never masked by a stale build.
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..', '..')

/** Node's flags in package.json's start script: Liftoff only for the WASM modules, a small young generation, a heap that grows slowly. */
export const nodeFlags = ['--no-wasm-tier-up', '--no-wasm-dynamic-tiering', '--max-semi-space-size=2', '--v8-pool-size=1', '--heap-growing-percent=30']

export type Program = 'server' | 'cli/admin' | 'cli/db-migrate' | 'cli/keys'

let newestSource: number | undefined

/** The last change to what the build reads: the sources (not the client Prisma writes into src/generated) and the schema it is made from. */
function newestSourceChange (): number {
  let newest = statSync(join(root, 'prisma', 'schema.prisma')).mtimeMs
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) {
        if (entry.name !== 'generated') walk(join(dir, entry.name))
      } else {
        newest = Math.max(newest, statSync(join(dir, entry.name)).mtimeMs)
      }
    }
  }
  walk(join(root, 'src'))
  return newest
}

function builtSinceLastChange (file: string): boolean {
  try {
    newestSource ??= newestSourceChange()
    return statSync(file).mtimeMs >= newestSource
  } catch {
    return false
  }
}

/** The arguments of `node` that run `program`. */
export function programArgs (program: Program): string[] {
  const built = join(root, 'dist', `${program}.js`)
  return builtSinceLastChange(built) ? [...nodeFlags, built] : ['--import', 'tsx', join(root, 'src', `${program}.ts`)]
}
