#!/usr/bin/env node
// The test files of groups of test/groups.yaml: `once`, `process`, `process-each-database`,
// or `database` (every test file listed in none of them). Prints them, one a line, or with
// --run runs tap on them (further arguments after `--` go to tap).
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parse } from 'yaml'

const root = join(import.meta.dirname, '..')
const manifest = parse(readFileSync(join(root, 'test', 'groups.yaml'), 'utf8'))
const listed = Object.keys(manifest)
const groups = [...listed, 'database']

/** Every file tap runs (.taprc: test/**\/*.test.ts and packages/*\/test/**\/*.test.ts). */
function allTestFiles () {
  const packages = readdirSync(join(root, 'packages')).map(name => join('packages', name, 'test'))
  return ['test', ...packages].flatMap(dir => {
    let names
    try { names = readdirSync(join(root, dir), { recursive: true }) } catch { return [] }
    return names.filter(name => name.endsWith('.test.ts')).map(name => relative(root, join(root, dir, name)))
  }).sort()
}

function filesOf (group, all) {
  if (group === 'database') {
    const elsewhere = new Set(listed.flatMap(name => manifest[name]))
    return all.filter(file => !elsewhere.has(file))
  }
  const missing = manifest[group].filter(file => !all.includes(file))
  if (missing.length > 0) throw new Error(`test/groups.yaml names files that do not exist: ${missing.join(', ')}`)
  return manifest[group]
}

const args = process.argv.slice(2)
const dashes = args.indexOf('--')
const tapArgs = dashes === -1 ? [] : args.slice(dashes + 1)
const own = dashes === -1 ? args : args.slice(0, dashes)
const run = own.includes('--run')
const wanted = own.filter(arg => arg !== '--run')
if (wanted.length === 0 || wanted.some(group => !groups.includes(group))) {
  console.error(`usage: node scripts/test-files.mjs [--run] <${groups.join('|')}>... [-- tap options]`)
  process.exit(2)
}
const all = allTestFiles()
const files = wanted.flatMap(group => filesOf(group, all))
if (!run) {
  console.log(files.join('\n'))
} else {
  const tap = join(root, 'node_modules', '.bin', 'tap')
  const child = spawn(tap, [...tapArgs, ...files], { stdio: 'inherit' })
  child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)))
}
