// Whether a new password is among the first an attacker tries (NIST SP 800-63B-4 3.1.1.2: lists
// of common passwords, repetitive or sequential characters, context-specific words).
import { dictionary } from '@zxcvbn-ts/language-common'

const commonPasswords = new Set(dictionary['passwords-common'].map(p => p.toLowerCase()))

// What people type for a letter to satisfy a composition rule they met elsewhere.
const LOOK_ALIKES: Readonly<Record<string, string>> = { '@': 'a', 4: 'a', 8: 'b', 3: 'e', 1: 'i', '!': 'i', 0: 'o', $: 's', 5: 's', 7: 't', '+': 't' }
const unLeet = (text: string) => text.replace(/[@483!10$57+]/g, character => LOOK_ALIKES[character] ?? character)

/**
 * The password as guessers try it: itself, without the digits and symbols around its letters
 * (`Summer2023!` is `summer`, `!!password1` is `password`), without what follows its last
 * letter or digit (`12345678!` is `12345678`), and each with look-alikes read as letters
 * (`P@ssw0rd` is `password`). In compatibility form (NFKC) and lower case, so full-width
 * letters and case change nothing.
 */
function variantsOf (password: string): Set<string> {
  const whole = password.normalize('NFKC').toLowerCase()
  const letters = whole.replace(/^[^\p{L}]+|[^\p{L}]+$/gu, '')
  const trimmed = whole.replace(/[^\p{L}\p{N}]+$/u, '')
  return new Set([whole, letters, trimmed].flatMap(form => [form, unLeet(form)]).filter(form => form !== ''))
}

/** Fewer than three different characters (`aaaaaaaa`, `abababab`, eight spaces). */
function isRepetitive (password: string): boolean {
  return new Set(password.normalize('NFKC').toLowerCase()).size < 3
}

/** One step up or down the alphabet or the digits throughout (`abcdefgh`, `98765432`). */
function isSequential (password: string): boolean {
  const points = [...password.normalize('NFKC').toLowerCase()].map(character => character.codePointAt(0) ?? 0)
  const step = (points[1] ?? 0) - (points[0] ?? 0)
  return Math.abs(step) === 1 && points.every((point, i) => i === 0 || point - (points[i - 1] ?? 0) === step)
}

/**
 * True when `password` is in the list of ~49,000 common passwords in any of its guessers'
 * variants, repetitive, sequential, or in any variant one of `own` (the account's email and
 * username, in canonical form) or the email's local part (`ada2024!` for `ada@example.com`).
 */
export function isGuessable (password: string, own: ReadonlyArray<string | null> = []): boolean {
  const words = new Set(own.flatMap(value => value === null ? [] : [value, value.split('@')[0] ?? value]))
  return isRepetitive(password) || isSequential(password) || [...variantsOf(password)].some(variant => commonPasswords.has(variant) || words.has(variant))
}
