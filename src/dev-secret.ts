// The development root secret: made once under DATA_DIR so that `npm start` needs no configuration.
import { randomBytes } from 'node:crypto'
import { link, mkdir, open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { ConfigSchema, type Config } from './config.js'
import { isWeakSecret, SECRET_BAR } from './config-weak-secrets.js'

// What AUTH_SECRET must be (config.ts): a file holds the same root secret, and every key derives from it.
const MIN_LENGTH = ConfigSchema.properties.AUTH_SECRET.minLength ?? 32
const MAX_LENGTH = ConfigSchema.properties.AUTH_SECRET.maxLength ?? 1024

/**
 * AUTH_SECRET when set; otherwise, outside production only, a random secret kept in
 * DATA_DIR/auth-secret (mode 0600), so tokens survive restarts of a development server.
 *
 * @throws when that file cannot serve: a secret shorter than AUTH_SECRET may be (an empty file
 * included: every key would derive from a known value), or guessable; a directory at its path;
 * a file that cannot be read. The message names the file and what to do.
 */
export async function resolveAuthSecret (config: Config, log: Logger): Promise<string> {
  if (config.AUTH_SECRET !== undefined) return config.AUTH_SECRET
  if (config.NODE_ENV === 'production') throw new Error('AUTH_SECRET is required in production')
  const file = join(config.DATA_DIR, 'auth-secret')
  await mkdir(config.DATA_DIR, { recursive: true, mode: 0o700 })
  // Made here, or by another process starting on the same DATA_DIR at the same moment.
  const secret = await readSecret(file) ?? await createSecret(file) ?? await readSecret(file)
  if (secret === undefined) throw new Error(`${file}: the development secret appeared and vanished while this process made its own; start again`)
  log.warn(`!!! AUTH_SECRET is not set: using the DEVELOPMENT secret in ${file}. Never use it in production: set AUTH_SECRET (openssl rand -base64 48). !!!`)
  return secret
}

const remedy = (file: string) => `delete ${file} for a new one to be made (tokens signed with the old one stop working), or set AUTH_SECRET (openssl rand -base64 48)`

/** The secret in `file`, checked as AUTH_SECRET is; undefined when there is no file. */
async function readSecret (file: string): Promise<string | undefined> {
  let content: string
  try {
    content = await readFile(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    if (code === 'EISDIR') throw new Error(`${file} is a directory, where the development secret is kept: remove it for a new secret to be made, or set AUTH_SECRET (openssl rand -base64 48)`)
    throw new Error(`cannot read the development secret in ${file}: ${(error as Error).message}`)
  }
  const secret = content.trim()
  if (secret.length < MIN_LENGTH) {
    throw new Error(`${file} holds a development secret of ${secret.length} characters, fewer than the ${MIN_LENGTH} AUTH_SECRET needs (an empty file is left by a write cut short): ${remedy(file)}`)
  }
  if (secret.length > MAX_LENGTH) throw new Error(`${file} holds a development secret of ${secret.length} characters, more than the ${MAX_LENGTH} AUTH_SECRET takes: ${remedy(file)}`)
  if (isWeakSecret(secret, SECRET_BAR)) throw new Error(`${file} holds a development secret that looks like a placeholder or a low-entropy value: ${remedy(file)}`)
  return secret
}

function newSecret (): string {
  for (;;) {
    const secret = randomBytes(48).toString('base64url')
    // Next to never: a random value that reads as weak would be refused at the next start.
    if (!isWeakSecret(secret, SECRET_BAR)) return secret
  }
}

/** Writes `secret` at `file` unless something is there (false then), flushed. */
async function writeInPlace (file: string, secret: string): Promise<boolean> {
  const handle = await open(file, 'wx', 0o600).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'EEXIST') return undefined
    throw error
  })
  if (handle === undefined) return false
  try {
    await handle.writeFile(`${secret}\n`)
    await handle.sync()
  } finally {
    await handle.close()
  }
  return true
}

/**
 * Writes a new secret whole to a file of its own in the same directory (mode 0600, flushed),
 * then links it at `file`, which never replaces an existing file: a process killed, or a disk
 * full, leaves no empty or partial secret there. Undefined when something was at `file`
 * already (another process starting on this DATA_DIR made it first): the caller reads it.
 */
async function createSecret (file: string): Promise<string | undefined> {
  const secret = newSecret()
  const temporary = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  try {
    // A name of this process's own: nothing is there.
    await writeInPlace(temporary, secret)
    const linked = await link(temporary, file).then(() => true, async (error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') return false
      // A file system without hard links (a VirtualBox shared folder, some FUSE or SMB mounts):
      // written in place, exclusively; a partial file there is refused at the next start.
      if (error.code === 'EPERM' || error.code === 'ENOTSUP' || error.code === 'ENOSYS') return await writeInPlace(file, secret)
      throw error
    })
    return linked ? secret : undefined
  } catch (error) {
    throw new Error(`cannot write the development secret to ${file}: ${(error as Error).message}`)
  } finally {
    await rm(temporary, { force: true })
  }
}
