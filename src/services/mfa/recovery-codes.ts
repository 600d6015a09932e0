// Recovery codes: generated, normalised, hashed and matched without early exit.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

export const RECOVERY_CODE_COUNT = 10
// Crockford's base32 without I, L, O, U: nothing to misread when typed from paper.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'
/** 16 characters of 5 bits: 80 random bits each (docs/second-factor.md, Second factor), shown as xxxx-xxxx-xxxx-xxxx. */
const CODE_CHARACTERS = 16

/** Ten new codes, for showing once. */
export function newRecoveryCodes (): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    const bytes = randomBytes(CODE_CHARACTERS)
    // 256 is a multiple of 32: taking the low five bits of each byte is uniform.
    const characters = [...bytes].map(byte => ALPHABET[byte & 31]).join('')
    return characters.match(/.{4}/g)?.join('-') ?? characters
  })
}

/**
 * Case, spaces and dashes do not matter: a code typed as printed, or run together, is the same.
 * O is read as 0, and I and L as 1, as Crockford's decoding does (https://www.crockford.com/base32.html):
 * the alphabet leaves those letters out, so they can only be a misread digit, never another code.
 */
export function normaliseRecoveryCode (code: string): string {
  return code.replace(/[\s-]+/g, '').toLowerCase().replace(/o/g, '0').replace(/[il]/g, '1')
}

/**
 * SHA-256 of the normalised code. A fast hash is enough: 80 random bits cannot be guessed
 * offline the way a password can (no dictionary, 2^80 trials).
 */
export function hashRecoveryCode (code: string): string {
  return createHash('sha256').update(normaliseRecoveryCode(code)).digest('base64url')
}

/**
 * The index of the stored hash `code` matches, or -1. Every hash is compared, in constant
 * time, whatever matched before: the time taken says nothing about which code, or whether one did.
 */
export function findRecoveryCode (hashes: readonly string[], code: string): number {
  const presented = Buffer.from(hashRecoveryCode(code))
  let found = -1
  hashes.forEach((hash, index) => {
    const stored = Buffer.from(hash)
    const equal = stored.length === presented.length && timingSafeEqual(stored, presented)
    if (equal && found === -1) found = index
  })
  return found
}
