// What a password-hashing thread runs (see passwords.ts): argon2id, synchronously, on that thread.
// CommonJS JavaScript on purpose: piscina loads its workers with require(), and Node 20
// requiring an ES module (through its require(esm) facade) aborts the whole process when the
// pool is closed while a thread is still loading it; this file is required as it is, in the
// built service and under tsx alike.
'use strict'
const { hashSync, verifySync } = require('@node-rs/argon2')

// How long the latest hashes and checks at the configured parameters took on this thread: their
// median, the lower of two middles (a descheduled run counts for little), is what a check against
// a hash made with less work is held to (below). The thread's first is not kept: it pays for
// the memory's first use, and ran slower than any since.
const latestMs = []
let timedFirst = false
const sleeper = new Int32Array(new SharedArrayBuffer(4))

function configuredMs () {
  const sorted = [...latestMs].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)]
}

function timed (work) {
  const started = performance.now()
  const result = work()
  return { result, ms: performance.now() - started }
}

function remember (ms) {
  if (!timedFirst) {
    timedFirst = true
    return
  }
  latestMs.push(ms)
  if (latestMs.length > 9) latestMs.shift()
}

/**
 * A check against a hash made with less work than configured (`padTo`: the configured
 * options) ends no sooner than a check at the configured parameters does on this thread, its
 * thread held meanwhile, so that a wrong password for an account not rehashed since the
 * parameters rose answers as an unknown account's decoy check does. The work itself cannot be
 * matched: argon2's time is not its memory times its passes. A thread that has not yet timed
 * the configured work does it once instead.
 * @param {import('./passwords.js').Argon2Task} task
 */
module.exports = function hashOrVerify (task) {
  if (task.op === 'hash') {
    const { result, ms } = timed(() => hashSync(task.password, task.options))
    if (task.configured === true) remember(ms)
    return result
  }
  const { result: matches, ms } = timed(() => {
    try {
      return verifySync(task.hash, task.password)
    } catch {
      return false
    }
  })
  if (task.padTo === undefined) {
    if (task.configured === true) remember(ms)
  } else if (latestMs.length === 0) {
    // Never timed here: the configured work itself, once or twice (the first run is not kept).
    remember(timed(() => hashSync(task.password, task.padTo)).ms)
  } else if (ms < configuredMs()) {
    Atomics.wait(sleeper, 0, 0, configuredMs() - ms)
  }
  return matches
}
