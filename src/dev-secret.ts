// The development root secret: made once under DATA_DIR so that `npm start` needs no configuration.
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { Config } from './config.js'

/**
 * AUTH_SECRET when set; otherwise, outside production only, a random secret kept in
 * DATA_DIR/auth-secret (mode 0600), so tokens survive restarts of a development server.
 */
export async function resolveAuthSecret (config: Config, log: Logger): Promise<string> {
  if (config.AUTH_SECRET !== undefined) return config.AUTH_SECRET
  if (config.NODE_ENV === 'production') throw new Error('AUTH_SECRET is required in production')
  const file = join(config.DATA_DIR, 'auth-secret')
  await mkdir(config.DATA_DIR, { recursive: true, mode: 0o700 })
  let secret: string
  try {
    secret = (await readFile(file, 'utf8')).trim()
  } catch {
    secret = randomBytes(48).toString('base64url')
    await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' })
  }
  log.warn(`!!! AUTH_SECRET is not set: using the DEVELOPMENT secret in ${file}. Never use it in production: set AUTH_SECRET (openssl rand -base64 48). !!!`)
  return secret
}
