// The failure report at the end of a CI log (scripts/failed-tests.mjs), read from tap's real
// output: tap-output.tap holds a failed assertion two subtests deep, a thrown error, a timeout
// and a passing subtest; tap-crash.tap a test file that died before its first test.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'

const here = import.meta.dirname
const script = join(here, '..', '..', 'scripts', 'failed-tests.mjs')

async function report (...logs: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [script, ...logs.map(log => join(here, log))])
  return stdout
}

t.test('each failure once, with its path of subtests, its run and its diagnostic', async t => {
  const text = await report('tap-output.tap', 'tap-crash.tap')
  const failures = text.split('\n').filter(line => line.startsWith('not ok'))
  t.same(failures, [
    'not ok (tap-output): test/example.test.ts > outer > inner > one is two',
    'not ok (tap-output): test/example.test.ts > throws > boom',
    'not ok (tap-output): test/example.test.ts > times out > timeout!',
    'not ok (tap-output): test/example.test.ts > times out',
    'not ok (tap-crash): test/crash.test.ts'
  ])
  t.match(text, /^ {4}diff: \|\n {6}--- expected\n {6}\+\+\+ actual\n/m, 'the diagnostic follows, indented under it')
  t.match(text, /tapCaught: returnedPromiseRejection/)
  t.match(text, /expired: times out/)
  t.match(text, /exitCode: 1/)
})

t.test('a log without failures prints nothing', async t => {
  t.equal(await report('tap-passed.tap'), '')
})
