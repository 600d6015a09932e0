// Whether a secret of the configuration (AUTH_SECRET, METRICS_TOKEN) reads as guessable: the production refusal's rule.

/** The least a value must hold: distinct characters, and choices (see choicesIn). */
export interface SecretBar { distinct: number, choices: number }

// Set from random values of the shortest length each setting takes (AUTH_SECRET's 32
// characters, METRICS_TOKEN's 16) in 20 000 tries of each shape, hex, base64, alphanumeric,
// UUIDs and decimal digits (test/config.test.ts tries a few): one random value in 2 500 or fewer
// falls below them, of decimal digits one in 400 to 1 000.
export const SECRET_BAR: SecretBar = { distinct: 8, choices: 18 }
export const TOKEN_BAR: SecretBar = { distinct: 5, choices: 8 }

/**
 * A placeholder, or a value a guesser tries early: few distinct characters; made of runs along
 * the alphabet, the digits or the keyboard (`abcdef…`, `0123…`, `qwerty…`, `1qaz2wsx…`,
 * `1q2w3e…`, the numpad, Shift held or not), each run of five or more one choice
 * rather than one per character; a shorter value repeated over most of it; a placeholder word,
 * leetspeak included; or any of that in base64 or hex, line breaks included (`echo` adds one,
 * `base64` wraps its lines). No dictionary: `my-company-auth-key-2026` passes.
 */
export function isWeakSecret (secret: string, least: SecretBar): boolean {
  return [secret, ...decodedText(secret)].some(value =>
    new Set(value).size < least.distinct || choicesIn(value) < least.choices || PLACEHOLDER.test(value))
}

// Each letter also as leetspeak writes it, in any mix (`1etme1n`, `p@55w0rd`).
const LEET: Record<string, string> = { a: '[a4@]', e: '[e3]', i: '[i1!|]', l: '[l1|!]', o: '[o0]', s: '[s5$]', t: '[t7+]' }
const PLACEHOLDER = new RegExp(['change_me', 'secret', 'example', 'password', 'letmein', 'token', 'metrics', 'prometheus']
  .map(word => [...word].map(char => char === '_' ? '[-_ ]?' : LEET[char] ?? char).join('')).join('|'), 'i')

const WALKS = [
  'abcdefghijklmnopqrstuvwxyz', '01234567890', 'qwertyuiop', 'asdfghjkl', 'zxcvbnm',
  // Down the keyboard's columns, zigzags between two rows, the numpad's rows. (Letters and digits
  // in turn, `a1b2c3…`, and the numpad's columns would join so many pairs of random hex or
  // decimal characters that random values would fail.)
  '1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/', 'qazwsxedcrfvtgbyhnujmik,ol.p;/',
  '1q2w3e4r5t6y7u8i9o0p', 'q1w2e3r4t5y6u7i8o9p0', 'qawsedrftgyhujikolp', 'azsxdcfvgbhnjmk,l.',
  '789456123', '/*-+'
]
// Each pair of neighbours along a walk, both ways.
const NEIGHBOURS = new Set(WALKS.flatMap(walk => [...walk].slice(1).flatMap((char, i) => [`${walk[i] as string}${char}`, `${char}${walk[i] as string}`])))
// The key under each character typed with Shift (a US layout).
const UNSHIFTED: Record<string, string> = { '!': '1', '@': '2', '#': '3', $: '4', '%': '5', '^': '6', '&': '7', '*': '8', '(': '9', ')': '0', _: '-', '+': '=', '{': '[', '}': ']', '|': '\\', ':': ';', '"': "'", '<': ',', '>': '.', '?': '/', '~': '`' }

/**
 * The choices `value` takes once repeats count as one: a shorter value repeated over three
 * quarters of it or more counts once (with what follows), and each run of five or more repeated
 * keys or neighbours along a walk counts one (shorter runs count in full: random values hold
 * many).
 */
function choicesIn (value: string): number {
  const keys = [...value.toLowerCase()].map(char => UNSHIFTED[char] ?? char)
  const unit = withoutRepeats(keys)
  let choices = 0
  let run = 0
  for (let i = 0; i <= unit.length; i++) {
    if (i > 0 && i < unit.length && (unit[i - 1] === unit[i] || NEIGHBOURS.has(`${unit[i - 1] as string}${unit[i] as string}`))) {
      run++
      continue
    }
    if (i > 0) choices += run >= 5 ? 1 : run
    run = 1
  }
  return choices
}

/**
 * `keys` with a repetition of a shorter value cut to one copy of it: a stretch of three quarters
 * of them or more, starting in their first quarter, that repeats a value of at most half its
 * length (KMP's prefix function from each start: a quarter of the length in passes, at most
 * 256 of 1 024 keys, the longest value taken).
 */
function withoutRepeats (keys: string[]): string[] {
  const least = Math.ceil(keys.length * 0.75)
  if (least < 2) return keys
  for (let start = 0; start <= keys.length - least; start++) {
    const stretch = keys.slice(start)
    const border = new Array<number>(stretch.length).fill(0)
    for (let i = 1, k = 0; i < stretch.length; i++) {
      while (k > 0 && stretch[i] !== stretch[k]) k = border[k - 1] as number
      if (stretch[i] === stretch[k]) k++
      border[i] = k
    }
    for (let length = stretch.length; length >= least; length--) {
      const period = length - (border[length - 1] as number)
      if (period <= length / 2) return [...keys.slice(0, start), ...stretch.slice(0, period), ...stretch.slice(length)]
    }
  }
  return keys
}

/**
 * The text a value spells in base64 or hex, when it spells one (random bytes do not): line
 * breaks and spaces in the value aside (`base64` wraps its lines), and the text's final line
 * break (`echo` adds one).
 */
function decodedText (value: string): string[] {
  const packed = value.replace(/\s/g, '')
  const hex = /^[0-9a-f]+$/i.test(packed) && packed.length % 2 === 0 ? Buffer.from(packed, 'hex') : undefined
  const base64 = /^[A-Za-z0-9+/_-]+={0,2}$/.test(packed) ? Buffer.from(packed, 'base64') : undefined
  return [hex, base64].flatMap(bytes => {
    let text = bytes?.toString('latin1') ?? ''
    while (text.endsWith('\n') || text.endsWith('\r')) text = text.slice(0, -1)
    return text.length >= 8 && /^[\x20-\x7e]+$/.test(text) ? [text] : []
  })
}
