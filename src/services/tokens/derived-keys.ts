// The keys derived from the root secret, one per purpose.
import { hkdfSync } from 'node:crypto'

/** Derives independent keys from the root secret, so one never doubles as another. */
export function deriveKey (rootSecret: string, purpose: 'access-token' | 'refresh-token' | 'one-time-token' | 'totp-secret' | 'identifier'): Buffer {
  return Buffer.from(hkdfSync('sha256', rootSecret, 'auth-service', purpose, 32))
}
