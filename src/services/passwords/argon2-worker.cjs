// What a password-hashing thread runs (see passwords.ts): argon2id, synchronously, on that thread.
// CommonJS JavaScript on purpose: piscina loads its workers with require(), and Node 20
// requiring an ES module (through its require(esm) facade) aborts the whole process when the
// pool is closed while a thread is still loading it; this file is required as it is, in the
// built service and under tsx alike.
'use strict'
const { hashSync, verifySync } = require('@node-rs/argon2')

/** @param {import('./passwords.js').Argon2Task} task */
module.exports = function hashOrVerify (task) {
  return task.op === 'hash' ? hashSync(task.password, task.options) : verifySync(task.hash, task.password)
}
