// How dates, durations and devices read on screen.
export function dateTime (iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })
}

const units: Array<[number, string]> = [[86_400, 'day'], [3600, 'hour'], [60, 'minute'], [1, 'second']]

/** 900 → "15 minutes", 90061 → "1 day 1 hour 1 minute 1 second". */
export function duration (seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) return ''
  const parts: string[] = []
  let left = Math.floor(seconds)
  for (const [size, name] of units) {
    const count = Math.floor(left / size)
    if (count > 0) parts.push(`${count} ${name}${count === 1 ? '' : 's'}`)
    left -= count * size
  }
  return parts.join(' ')
}

/**
 * Text a stranger wrote, with what a reader cannot see spelt out: control and format
 * characters (zero-width ones, bidi overrides that reorder what follows), letters drawn blank
 * (the Hangul fillers, the blank braille pattern, a blank musical symbol) and every space but
 * the plain one become \u{…}, so an entry cannot pass for another's, nor turn the rest of its
 * line around. Variation selectors stay: they change how the character before them is drawn.
 */
export function visible (text: string): string {
  return text.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u115f\u1160\u3164\uffa0\u2800\u{1d159}]|[^\S ]/gu, c => `\\u{${(c.codePointAt(0) as number).toString(16)}}`)
}

/**
 * "Firefox on Windows" from a user agent; the whole string stays in the title. One the list
 * does not know is shown in quotes, as what the client sent: it cannot pass for the console's
 * own words ("… (this console)").
 */
export function device (userAgent: string | null): string {
  if (userAgent === null || userAgent === '') return 'Unknown device'
  const browser = [['Edg/', 'Edge'], ['Firefox/', 'Firefox'], ['Chrome/', 'Chrome'], ['Safari/', 'Safari']].find(([mark]) => userAgent.includes(mark as string))?.[1]
  const system = [['Windows', 'Windows'], ['Android', 'Android'], ['iPhone', 'iOS'], ['iPad', 'iPadOS'], ['Mac OS X', 'macOS'], ['Linux', 'Linux']].find(([mark]) => userAgent.includes(mark as string))?.[1]
  if (browser === undefined) {
    const shown = visible(userAgent)
    return `“${shown.length > 40 ? `${shown.slice(0, 40)}…` : shown}”`
  }
  return system === undefined ? browser : `${browser} on ${system}`
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
