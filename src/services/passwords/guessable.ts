// Whether a new password is among the first an attacker tries (NIST SP 800-63B-4 3.1.1.2: lists
// of common passwords, repetitive or sequential characters, context-specific words).
import { dictionary } from '@zxcvbn-ts/language-common'

const commonPasswords = new Set(dictionary['passwords-common'].map(p => p.toLowerCase()))
const LONGEST_ENTRY = Math.max(...[...commonPasswords].map(entry => [...entry].length))

// A beginning or an end of the password counts when it is this share of it at least: `summer`
// is most of `Summer2023!`, while `bear` is a small part of `0451-9923-8817-6642-bear`.
const MEANINGFUL_SHARE = 0.4
// A part inside it, this share (`password` of `xpasswordx`): short words turn up by chance inside random strings.
const INNER_SHARE = 0.6
// A run of one character, or one step up or down, counts when it is this share.
const RUN_SHARE = 0.6
// A word with at most this many digits and symbols around it is the password (`Max2020!`, `ada2024!`).
const DRESSING = 6

// What people type for a letter to satisfy a composition rule they met elsewhere; a 1 is an i or an l.
const LOOK_ALIKES: Readonly<Record<string, string>> = { '@': 'a', 4: 'a', 8: 'b', 3: 'e', '!': 'i', 0: 'o', $: 's', 5: 's', 7: 't', '+': 't' }
const readAs = (chars: string[], one: 'i' | 'l') => chars.map(c => c === '1' ? one : LOOK_ALIKES[c] ?? c)

// The digits' row typed with shift (US layout): `!@#$%^&*()` is `1234567890` to a guesser.
const SHIFTED_DIGITS: Readonly<Record<string, string>> = { '!': '1', '@': '2', '#': '3', $: '4', '%': '5', '^': '6', '&': '7', '*': '8', '(': '9', ')': '0' }
const unshifted = (chars: string[]) => chars.map(c => SHIFTED_DIGITS[c] ?? c)

const isLetterOrDigit = (c: string) => /^[\p{L}\p{N}]$/u.test(c)

const isLetter = (c: string) => /^\p{L}$/u.test(c)

/** Without what `keep` refuses at either end (`!!football!!` is `football`); a loop, not a regular expression, so a long run costs one pass. */
function trimmed (chars: string[], keep: (c: string) => boolean = isLetterOrDigit): string[] {
  let start = 0
  let end = chars.length
  while (start < end && !keep(chars[start] ?? '')) start++
  while (end > start && !keep(chars[end - 1] ?? '')) end--
  return chars.slice(start, end)
}

/**
 * The spellings a guesser starts from: the password in compatibility form (NFKC) and lower case,
 * without the symbols at its ends, without any separator (`p a s s w o r d`, `My-Password-1`),
 * each also with look-alikes read as letters (`P@ssw0rd`).
 */
function spellingsOf (chars: string[]): string[][] {
  return [chars, trimmed(chars), chars.filter(isLetterOrDigit)].flatMap(form => [form, readAs(form, 'i'), readAs(form, 'l')])
}

/** The same backwards (`poiuytrewq`, `enihsnus`): whole only, since parts of random strings read backwards are as likely words. */
const backwards = (chars: string[]) => [chars, trimmed(chars)].map(form => [...form].reverse().join(''))

/**
 * Each spelling whole, its beginnings and ends from `shortest` characters, and the parts inside
 * it from `inner` characters, up to the longest list entry (`summer` of `summer2023a`,
 * `password` of `xpasswordx`).
 */
function partsOf (spelling: string[], shortest: number, inner: number): string[] {
  const parts = spelling.length >= shortest ? [spelling.join('')] : []
  for (let length = shortest; length < spelling.length && length <= LONGEST_ENTRY; length++) {
    const starts = length >= inner ? spelling.length - length : 0
    for (let start = 0; start <= starts; start++) parts.push(spelling.slice(start, start + length).join(''))
    if (starts === 0) parts.push(spelling.slice(-length).join(''))
  }
  return parts
}

/** The letters inside a little dressing of digits and symbols (`max` of `Max2020!`), however short, and backwards (`qwerty` of `ytrewq123`): the word the password is. */
function dressedWord (chars: string[]): string[] {
  const word = trimmed(chars, isLetter)
  return word.length >= 3 && chars.length - word.length <= DRESSING ? [word.join(''), [...word].reverse().join('')] : []
}

/** How many characters from the start keep one step (0: the same character; 1 or -1: the next or previous). */
function stepRun (points: number[]): number {
  if (points.length < 2) return points.length
  const step = (points[1] ?? 0) - (points[0] ?? 0)
  if (Math.abs(step) > 1) return 1
  let length = 2
  while (length < points.length && (points[length] ?? 0) - (points[length - 1] ?? 0) === step) length++
  return length
}

/** Mostly one character, or a run up or down the alphabet or the digits (`aaaaaaaa1!`, `abcdefgh`, `98765432`), or fewer than three different characters. */
function isRepetitiveOrSequential (chars: string[]): boolean {
  if (new Set(chars).size < 3) return true
  const points = trimmed(chars).map(c => c.codePointAt(0) ?? 0)
  const longest = Math.max(stepRun(points), stepRun([...points].reverse()))
  return longest >= Math.max(3, Math.ceil(chars.length * RUN_SHARE))
}

const DATE_CHARACTERS = /^[\d./ -]+$/

/** Whether `year`, `month` and `day` name a day of the calendar, from 1900 to 2099 (two-digit years are any century). */
function isDay (year: number, month: number, day: number): boolean {
  const inRange = year < 100 || (year >= 1900 && year <= 2099)
  const date = new Date(Date.UTC(year < 100 ? 2000 + year : year, month - 1, day))
  return inRange && date.getUTCMonth() === month - 1 && date.getUTCDate() === day
}

/** Whether three numbers are a date in any of the orders people write one: year first, day first, month first. */
const isDayInSomeOrder = ([a, b, c]: number[]) => a !== undefined && b !== undefined && c !== undefined &&
  (isDay(a, b, c) || isDay(c, b, a) || isDay(c, a, b))

/**
 * A date alone, in any of the orders people write one, with separators (`1987-05-12`,
 * `5.12.1987`, `12/5/87`) or without (`19870512`, `05121987`, `870512`).
 */
function isDate (chars: string[]): boolean {
  const text = chars.join('')
  if (!DATE_CHARACTERS.test(text)) return false
  const parts = text.split(/[./ -]+/).filter(part => part !== '')
  if (parts.length === 3) return parts.every(part => part.length <= 4) && isDayInSomeOrder(parts.map(Number))
  const digits = parts.length === 1 ? parts[0] ?? '' : ''
  if (digits.length === 8) return isDayInSomeOrder(numbersIn(digits, [4, 2, 2])) || isDayInSomeOrder(numbersIn(digits, [2, 2, 4]))
  if (digits.length === 6) return isDayInSomeOrder(numbersIn(digits, [2, 2, 2]))
  return false
}

/** The numbers of `digits` cut into pieces of these lengths, in turn. */
function numbersIn (digits: string, lengths: number[]): number[] {
  const numbers: number[] = []
  let at = 0
  for (const length of lengths) {
    numbers.push(Number(digits.slice(at, at + length)))
    at += length
  }
  return numbers
}

/** One short piece said again and again (`abcabcabc`, `hunter2hunter2`). */
function isRepeated (chars: string[]): boolean {
  const text = trimmed(chars).join('')
  for (let unit = 1; unit <= Math.min(LONGEST_ENTRY, text.length / 2); unit++) {
    if (text.length % unit === 0 && text.slice(0, unit).repeat(text.length / unit) === text) return true
  }
  return false
}

/**
 * True when `password` is a date, or repetitive or sequential (the digits' row typed with shift
 * included), or when most of it (any part of two fifths of it at least, in any of a guesser's
 * spellings), or the word inside a little dressing of digits and symbols, is in the list of
 * ~49,000 common passwords, or is one of `own` (the account's email and username, in canonical
 * form) or the email's local part (`ada2024!` for `ada@example.com`). Linear in the password's
 * length: no part longer than the longest entry is looked up, so a password past two and a half
 * times that length has no part to look up.
 */
export function isGuessable (password: string, own: ReadonlyArray<string | null> = []): boolean {
  const chars = [...password.normalize('NFKC').toLowerCase()]
  if ([chars, unshifted(chars)].some(form => isDate(form) || isRepetitiveOrSequential(form) || isRepeated(form))) return true
  const words = new Set(own.flatMap(value => value === null ? [] : [value, value.split('@')[0] ?? value]))
  const shortest = Math.max(3, Math.ceil(chars.length * MEANINGFUL_SHARE))
  const inner = Math.max(shortest, Math.ceil(chars.length * INNER_SHARE))
  const parts = [...dressedWord(chars), ...backwards(chars), ...spellingsOf(chars).flatMap(spelling => partsOf(spelling, shortest, inner))]
  return parts.some(part => commonPasswords.has(part) || words.has(part))
}
