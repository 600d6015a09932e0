// TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps) with otpauth: secrets, codes, the ±1 step window, and sealing secrets at rest.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { Secret, TOTP } from 'otpauth'

const TOTP_PERIOD_SECONDS = 30
const TOTP_DIGITS = 6
/** Steps either side of the current one that are still accepted (RFC 6238 5.2: one, for clock drift and typing time). */
const TOTP_WINDOW = 1

/** A new secret: 160 random bits, the HMAC-SHA-1 key size RFC 4226 4 recommends. */
export function newTotpSecret (): string {
  return new Secret({ size: 20 }).base32
}

function totpOf (secret: string, label = '', issuer = ''): TOTP {
  return new TOTP({ issuer, label, algorithm: 'SHA1', digits: TOTP_DIGITS, period: TOTP_PERIOD_SECONDS, secret: Secret.fromBase32(secret) })
}

/** The otpauth:// URI an authenticator app scans (Key Uri Format). */
export function otpauthUri (secret: string, issuer: string, account: string): string {
  return totpOf(secret, account, issuer).toString()
}

/** The code of the step that holds `at` (tests and clients that need one). */
export function totpCode (secret: string, at: Date): string {
  return totpOf(secret).generate({ timestamp: at.getTime() })
}

/** The 30-second step that holds `at`. */
export function stepOf (at: Date): number {
  return Math.floor(at.getTime() / 1000 / TOTP_PERIOD_SECONDS)
}

/**
 * The step whose code `code` is, within ±1 step of `at`, or null. otpauth compares in
 * constant time. The caller refuses a step at or before the last one accepted, so a code
 * works once (RFC 6238 5.2).
 */
export function matchingStep (secret: string, code: string, at: Date): number | null {
  if (!/^[0-9]{6}$/.test(code)) return null
  const delta = totpOf(secret).validate({ token: code, timestamp: at.getTime(), window: TOTP_WINDOW })
  return delta === null ? null : stepOf(at) + delta
}

const SEAL_VERSION = 1
const IV_BYTES = 12
const TAG_BYTES = 16

/**
 * AES-256-GCM under a key derived from AUTH_SECRET, with the user id as associated data: a
 * sealed secret copied to another user's row does not open. Layout: version, iv, tag, ciphertext.
 */
export function sealSecret (key: Buffer, userId: string, secret: string): Uint8Array<ArrayBuffer> {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(userId))
  const ciphertext = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()])
  return new Uint8Array(Buffer.concat([Buffer.from([SEAL_VERSION]), iv, cipher.getAuthTag(), ciphertext]))
}

/**
 * The keys of sealed secrets: `current` (from AUTH_SECRET) seals and opens; `previous` (from
 * AUTH_SECRET_PREVIOUS, while the root secret is being replaced) only opens.
 */
export interface SealKeys {
  current: Buffer
  previous?: Buffer
}

/**
 * Opens with the current key, else with the previous one; `stale` says the previous one
 * opened it. Null when neither does: AUTH_SECRET changed without AUTH_SECRET_PREVIOUS.
 */
export function openSealed (keys: SealKeys, userId: string, sealed: Uint8Array): { secret: string, stale: boolean } | null {
  for (const [key, stale] of [[keys.current, false], [keys.previous, true]] as const) {
    if (key === undefined) continue
    try {
      return { secret: openSecret(key, userId, sealed), stale }
    } catch {
      // Not this key's: GCM's tag check fails.
    }
  }
  return null
}

/** Opens what sealSecret sealed; throws when the key, the user or the bytes differ. */
export function openSecret (key: Buffer, userId: string, sealed: Uint8Array): string {
  const bytes = Buffer.from(sealed)
  if (bytes[0] !== SEAL_VERSION) throw new Error('unknown sealed secret version')
  const iv = bytes.subarray(1, 1 + IV_BYTES)
  const tag = bytes.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES)
  const decipher = createDecipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(userId))
  decipher.setAuthTag(tag)
  return Buffer.concat([decipher.update(bytes.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8')
}
