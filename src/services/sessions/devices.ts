// The device a sign-in comes from: a random token it keeps (a cookie, or the client's storage), stored as a hash on the session, and the words a notice describes it by.
import { createHash, randomBytes } from 'node:crypto'

/** 32 random bytes, base64url: what the service hands a device at its first sign-in. */
export const DEVICE_TOKEN_PATTERN = '^[A-Za-z0-9_-]{43}$'
const DEVICE_TOKEN = new RegExp(DEVICE_TOKEN_PATTERN)

export function newDeviceToken (): string {
  return randomBytes(32).toString('base64url')
}

/** The token a device presented, if it is one of ours in shape; anything else gets a new one. */
export function presentedDeviceToken (value: string | undefined): string | null {
  return value !== undefined && DEVICE_TOKEN.test(value) ? value : null
}

/**
 * What the user's session keeps: a hash, so that a copy of the table hands nobody a device's
 * token (which would let them sign in as a known device, untold), and one of the user's own,
 * so that it does not tell which accounts share a browser (regression: one browser's sessions
 * of several accounts had one hash). The token is random, so no key is needed against guessing.
 */
export function deviceHashOf (userId: string, token: string): Buffer {
  return createHash('sha256').update(`${userId}:${token}`).digest()
}

const BROWSERS: Array<[RegExp, string]> = [
  [/\bEdg(?:e|A|iOS)?\//, 'Edge'], [/\bOPR\//, 'Opera'], [/\bSamsungBrowser\//, 'Samsung Internet'],
  [/\b(?:Firefox|FxiOS)\//, 'Firefox'], [/\b(?:Chrome|CriOS|Chromium)\//, 'Chrome'], [/\bVersion\/[\d.]+.*\bSafari\//, 'Safari']
]
const SYSTEMS: Array<[RegExp, string]> = [
  [/\b(?:iPhone|iPad|iPod)\b/, 'iOS'], [/\bAndroid\b/, 'Android'], [/\bWindows\b/, 'Windows'],
  [/\bMac OS X\b|\bMacintosh\b/, 'macOS'], [/\bCrOS\b/, 'ChromeOS'], [/\bLinux\b/, 'Linux']
]

/**
 * A few words for the owner's notice, from a fixed list only ("Firefox on Windows", "an app
 * or a browser"): the User-Agent is the client's to write, and a mail that quoted it would
 * carry a stranger's words ("your account is locked, call …") under the service's name.
 */
export function describeDevice (userAgent: string | undefined): string {
  const ua = userAgent?.slice(0, 512) ?? ''
  const browser = BROWSERS.find(([pattern]) => pattern.test(ua))?.[1]
  const system = SYSTEMS.find(([pattern]) => pattern.test(ua))?.[1]
  if (browser !== undefined && system !== undefined) return `${browser} on ${system}`
  if (browser !== undefined) return browser
  if (system !== undefined) return `an app or a browser on ${system}`
  return 'an app or a browser'
}
