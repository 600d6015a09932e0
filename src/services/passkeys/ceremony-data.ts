// Reading what the browser signed: the client data (type, challenge, origin) and the authenticator data's RP ID hash and flags.
import { createHash } from 'node:crypto'
import type { ErrorCode } from '../../errors.js'

export interface ClientData {
  type: string
  challenge: string
  origin: string
  /** True when the ceremony ran in a frame whose origin is not the page's (WebAuthn 5.8.1). */
  crossOrigin: boolean
}

/**
 * The client data JSON (WebAuthn 5.8.1), or null when it cannot be read. No browser sends such
 * a response, yet it meets the route's schema (base64url strings): the callers refuse it as a
 * passkey not accepted (PASSKEY_INVALID with the route's status), not as a body off its schema.
 */
export function clientDataOf (clientDataJSON: string): ClientData | null {
  try {
    const data = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')) as Record<string, unknown>
    if (typeof data.type === 'string' && typeof data.challenge === 'string' && typeof data.origin === 'string') {
      return { type: data.type, challenge: data.challenge, origin: data.origin, crossOrigin: data.crossOrigin === true }
    }
  } catch {}
  return null
}

/** The flags byte of authenticator data (WebAuthn 6.1): bit 2 is UV, "the user was verified". */
const USER_VERIFIED = 0x04

/** RP ID hash and flags, or null when the authenticator data is too short to hold them. */
export function authenticatorDataOf (authenticatorData: string): { rpIdHash: Buffer, userVerified: boolean } | null {
  const bytes = Buffer.from(authenticatorData, 'base64url')
  if (bytes.length < 37) return null
  const flags = bytes[32] as number
  return { rpIdHash: bytes.subarray(0, 32), userVerified: (flags & USER_VERIFIED) !== 0 }
}

/**
 * The checks that need no credential, in the order that names the refusal: the ceremony type,
 * then the origin (an exact member of WEBAUTHN_ORIGINS, in a page of its own: WebAuthn 7.1
 * step 11 and 7.2 step 15 refuse a ceremony in a frame of another origin, which this service
 * never expects), then the RP ID hash when given.
 */
export function originRefusal (data: ClientData, type: 'webauthn.get' | 'webauthn.create', origins: readonly string[], rpIdHash: Buffer | null, rpId: string): ErrorCode | null {
  if (data.type !== type) return 'PASSKEY_INVALID'
  if (!origins.includes(data.origin) || data.crossOrigin) return 'PASSKEY_ORIGIN_MISMATCH'
  if (rpIdHash !== null && !rpIdHash.equals(createHash('sha256').update(rpId).digest())) return 'PASSKEY_RP_ID_MISMATCH'
  return null
}
