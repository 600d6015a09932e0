// Builds the package: JavaScript per module (esbuild), declarations (TypeScript) with the service's
// types written out in full so that none refers to the service, and the browser entry's size.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { readdir, rm } from 'node:fs/promises'
import { dirname, join, relative, sep } from 'node:path'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import ts from 'typescript'

const root = join(import.meta.dirname, '..')
const src = join(root, 'src')
const dist = join(root, 'dist')
// The browser entry's budget (minified, gzipped), including everything it imports.
const BROWSER_LIMIT_BYTES = 8 * 1024

function fail (message) {
  console.error(`build failed: ${message}`)
  process.exit(1)
}

const format = diagnostics => ts.formatDiagnostics(diagnostics, { getCanonicalFileName: f => f, getCurrentDirectory: () => root, getNewLine: () => '\n' })

await rm(dist, { recursive: true, force: true })
const entries = (await readdir(src, { recursive: true })).filter(file => file.endsWith('.ts')).map(file => join(src, file))

await build({ entryPoints: entries, outdir: dist, outbase: src, format: 'esm', platform: 'neutral', target: 'es2022', logLevel: 'warning' })

// Declarations (type-checking is `npm run lint`'s job). The program reaches into the service's
// schemas (api-types.ts imports their types); only this package's declarations are written,
// api-types.d.ts with every type expanded.
const { options } = ts.parseJsonConfigFileContent(ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile).config, ts.sys, root)
const program = ts.createProgram(entries, { ...options, noEmit: false, declaration: true, emitDeclarationOnly: true, outDir: dist, rootDir: src })
const apiTypesSource = join(src, 'api-types.ts')
const emitted = program.emit(undefined, (fileName, text) => {
  if (!fileName.startsWith(dist + sep)) return
  const content = fileName === join(dist, 'api-types.d.ts') ? expandedDeclarations(program, apiTypesSource) : text
  mkdirSync(dirname(fileName), { recursive: true })
  writeFileSync(fileName, content)
})
if (emitted.emitSkipped) fail(format(emitted.diagnostics))

/** Each exported type alias of `file` as the checker resolves it, with its doc comment. */
function expandedDeclarations (program, file) {
  const checker = program.getTypeChecker()
  const source = program.getSourceFile(file)
  const printer = ts.createPrinter()
  const flags = ts.NodeBuilderFlags.NoTruncation | ts.NodeBuilderFlags.InTypeAlias | ts.NodeBuilderFlags.MultilineObjectLiterals
  const out = ['// The service\'s types, written out by scripts/build.mjs from src/api-types.ts.']
  for (const statement of source.statements) {
    if (!ts.isTypeAliasDeclaration(statement)) continue
    const doc = source.text.slice(statement.getFullStart(), statement.getStart()).trim()
    const node = checker.typeToTypeNode(checker.getTypeAtLocation(statement.name), statement, flags)
    out.push(`${doc === '' ? '' : `${doc}\n`}export type ${statement.name.text} = ${printer.printNode(ts.EmitHint.Unspecified, node, source)}`)
  }
  return `${out.join('\n')}\n`
}

// The declarations stand alone: the browser entry's compile with the DOM types alone (the
// server entry's add fastify and jose, which its users have), and none refers to the service.
const declarations = (await readdir(dist, { recursive: true })).filter(file => file.endsWith('.d.ts')).map(file => join(dist, file))
const leaking = declarations.filter(file => /from '(\.\.\/){3}|@sinclair\/typebox/.test(readFileSync(file, 'utf8')))
if (leaking.length > 0) fail(`declarations refer to the service: ${leaking.map(f => relative(root, f)).join(', ')}`)
const check = ts.createProgram([join(dist, 'index.d.ts')], { noEmit: true, strict: true, lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'], types: [], module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext })
const broken = ts.getPreEmitDiagnostics(check)
if (broken.length > 0) fail(format(broken))

// The browser entry, bundled and minified as an app's bundler would: only this package's code, within budget.
const bundle = await build({ entryPoints: [join(src, 'index.ts')], bundle: true, minify: true, format: 'esm', platform: 'browser', target: 'es2022', write: false, metafile: true })
const foreign = Object.keys(bundle.metafile.inputs).map(input => join(process.cwd(), input)).filter(input => !input.startsWith(src + sep))
if (foreign.length > 0) fail(`the browser entry pulls in code from outside the package: ${foreign.map(f => relative(root, f)).join(', ')}`)
const code = bundle.outputFiles[0].contents
const gzipped = gzipSync(code, { level: 9 }).length
console.log(`browser entry: ${code.length} bytes minified, ${gzipped} bytes gzipped (budget ${BROWSER_LIMIT_BYTES})`)
if (gzipped > BROWSER_LIMIT_BYTES) fail(`the browser entry is ${gzipped} bytes gzipped, over its budget of ${BROWSER_LIMIT_BYTES}`)
