// `npm run build:console`: bundles the admin console (console/) into dist/console with hashed asset names, compressed copies, and a size budget.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'
import { build } from 'esbuild'

const root = join(import.meta.dirname, '..')
const source = join(root, 'console')
export const CONSOLE_OUT_DIR = join(root, 'dist', 'console')
/** Everything the console loads, gzipped (issue 18). */
export const CONSOLE_BUDGET_BYTES = 100 * 1024

export interface ConsoleBuild {
  /** Served files, relative to the output directory. */
  files: string[]
  /** Everything a browser loads, gzipped. */
  gzippedBytes: number
}

export class ConsoleBudgetError extends Error {
  override name = 'ConsoleBudgetError'
}

/**
 * Builds into `outDir` (emptied first): index.html naming assets/console-<hash>.js and .css,
 * with .br and .gz beside each asset. Throws past CONSOLE_BUDGET_BYTES (or `budgetBytes`).
 */
export async function buildConsole ({ outDir = CONSOLE_OUT_DIR, budgetBytes = CONSOLE_BUDGET_BYTES } = {}): Promise<ConsoleBuild> {
  await rm(outDir, { recursive: true, force: true })
  const assets = join(outDir, 'assets')
  await mkdir(assets, { recursive: true })
  const result = await build({
    entryPoints: { console: join(source, 'src', 'main.ts') },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outdir: assets,
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning'
  })
  const outputs = Object.keys(result.metafile.outputs).map(file => basename(file))
  const script = outputs.find(file => file.endsWith('.js'))
  const style = outputs.find(file => file.endsWith('.css'))
  if (script === undefined || style === undefined) throw new Error(`the console build has no script or no style: ${outputs.join(', ')}`)

  const page = (await readFile(join(source, 'index.html'), 'utf8')).replace('%SCRIPT%', script).replace('%STYLE%', style)
  await writeFile(join(outDir, 'index.html'), page)

  let gzippedBytes = gzipSync(page, { level: 9 }).length
  for (const file of outputs) {
    const content = await readFile(join(assets, file))
    const gzipped = gzipSync(content, { level: 9 })
    gzippedBytes += gzipped.length
    await writeFile(join(assets, `${file}.gz`), gzipped)
    await writeFile(join(assets, `${file}.br`), brotliCompressSync(content, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }))
  }
  if (gzippedBytes > budgetBytes) throw new ConsoleBudgetError(`the console is ${gzippedBytes} bytes gzipped, over its budget of ${budgetBytes}`)
  return { files: ['index.html', ...outputs.map(file => `assets/${file}`)], gzippedBytes }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    const { files, gzippedBytes } = await buildConsole()
    console.log(`console: ${files.join(', ')}; ${gzippedBytes} bytes gzipped (budget ${CONSOLE_BUDGET_BYTES})`)
  } catch (error) {
    console.error(`console build failed: ${error instanceof Error ? error.message : String(error)}`)
    process.exitCode = 1
  }
}
