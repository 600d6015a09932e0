#!/usr/bin/env node
// The failures in tap's TAP output (--reporter=tap), each with the path of subtests that leads
// to it and its diagnostic block: what a CI log shows at its end, where a reader looks first.
// Usage: node scripts/failed-tests.mjs <tap log>... (each named in the report by its file name, less its extension)
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'

const MAX_FAILURES = 20
const MAX_DIAGNOSTIC_LINES = 30

const subtestStart = /^( *)# Subtest: (.*)$/
const result = /^( *)(not )?ok \d+ - (.*?)(?: # (?:time|SKIP|TODO).*)?$/

/** The failures of one log: a failed assertion, a thrown error, or a subtest that failed with no failed assertion inside (a timeout, a crash). */
function failuresOf (text, run) {
  const lines = text.split('\n')
  const open = [] // { indent, name, failedInside }
  const failures = []
  for (let i = 0; i < lines.length; i++) {
    const start = subtestStart.exec(lines[i])
    if (start) { open.push({ indent: start[1].length, name: start[2], failedInside: false }); continue }
    const line = result.exec(lines[i])
    if (!line) continue
    const [, indent, not, name] = line
    const top = open.at(-1)
    const closesSubtest = top !== undefined && top.indent === indent.length && top.name === name
    if (closesSubtest) open.pop()
    if (!not) continue
    // A failure inside was reported, and marked every subtest around it.
    if (closesSubtest && top.failedInside) continue
    for (const subtest of open) subtest.failedInside = true
    const diagnostic = []
    if (lines[i + 1]?.trim() === '---') {
      for (let j = i + 2; j < lines.length && lines[j].trim() !== '...'; j++) diagnostic.push(lines[j])
    }
    const path = [...open.map(subtest => subtest.name), name]
    // tap repeats a timed-out subtest's line after its siblings.
    if (!failures.some(failure => failure.path.join('\0') === path.join('\0'))) failures.push({ path, run, diagnostic })
  }
  return failures
}

const failures = process.argv.slice(2).flatMap(file => failuresOf(readFileSync(file, 'utf8'), basename(file).replace(/\.[^.]*$/, '')))
for (const { path, run, diagnostic } of failures.slice(0, MAX_FAILURES)) {
  console.log(`not ok (${run}): ${path.join(' > ')}`)
  const shown = diagnostic.slice(0, MAX_DIAGNOSTIC_LINES)
  const indent = Math.min(...shown.filter(text => text.trim() !== '').map(text => text.length - text.trimStart().length))
  for (const text of shown) console.log(`    ${text.slice(indent)}`)
  if (diagnostic.length > shown.length) console.log(`    … ${diagnostic.length - shown.length} more lines`)
}
if (failures.length > MAX_FAILURES) console.log(`… and ${failures.length - MAX_FAILURES} more failures`)
