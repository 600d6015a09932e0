// What a password-hashing thread runs (see passwords.ts): argon2id, synchronously, on that thread.
import { hashSync, verifySync, type Options } from '@node-rs/argon2'

export type Argon2Task =
  | { op: 'hash', password: string, options: Options }
  | { op: 'verify', hash: string, password: string }

export default function argon2 (task: Argon2Task): string | boolean {
  return task.op === 'hash' ? hashSync(task.password, task.options) : verifySync(task.hash, task.password)
}
