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

/** "Firefox on Windows" from a user agent; the whole string stays in the title. */
export function device (userAgent: string | null): string {
  if (userAgent === null || userAgent === '') return 'Unknown device'
  const browser = [['Edg/', 'Edge'], ['Firefox/', 'Firefox'], ['Chrome/', 'Chrome'], ['Safari/', 'Safari']].find(([mark]) => userAgent.includes(mark as string))?.[1]
  const system = [['Windows', 'Windows'], ['Android', 'Android'], ['iPhone', 'iOS'], ['iPad', 'iPadOS'], ['Mac OS X', 'macOS'], ['Linux', 'Linux']].find(([mark]) => userAgent.includes(mark as string))?.[1]
  if (browser === undefined) return userAgent.length > 40 ? `${userAgent.slice(0, 40)}…` : userAgent
  return system === undefined ? browser : `${browser} on ${system}`
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
