// What a password-hashing thread runs (see passwords.ts): argon2id, synchronously, on that thread.
// CommonJS JavaScript on purpose: piscina loads its workers with require(), and Node 20
// requiring an ES module (through its require(esm) facade) aborts the whole process when the
// pool is closed while a thread is still loading it; this file is required as it is, in the
// built service and under tsx alike.
'use strict'
const { hashSync, verifySync } = require('@node-rs/argon2')

/**
 * A check against a hash made with less work than configured is followed by a hash of that
 * much more work (`padding`), whatever its outcome, so that the check takes the configured
 * work in all: one task, one thread, one place in the line (passwords.ts, `paddingFor`).
 * @param {import('./passwords.js').Argon2Task} task
 */
module.exports = function hashOrVerify (task) {
  if (task.op === 'hash') return hashSync(task.password, task.options)
  let matches = false
  try {
    matches = verifySync(task.hash, task.password)
  } catch {}
  if (task.padding !== undefined) hashSync(task.password, task.padding)
  return matches
}
