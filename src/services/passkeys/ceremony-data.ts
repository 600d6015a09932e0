// Reading what the browser signed: the client data (type, challenge, origin) and the authenticator data's RP ID hash and flags.
import { createHash } from 'node:crypto'
import { apiError, type ErrorCode } from '../../errors.js'

export interface ClientData {
  type: string
  challenge: string
  origin: string
}

// Every challenge this service issues is base64url; anything else (a NUL, which PostgreSQL's
// text cannot hold, among others) is not one of ours and never reaches the database.
const CHALLENGE = /^[A-Za-z0-9_-]{1,128}$/

/** The client data JSON (WebAuthn 5.8.1); a response that cannot be read is a bad request (400). */
export function clientDataOf (clientDataJSON: string): ClientData {
  try {
    const data = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')) as Record<string, unknown>
    if (typeof data.type === 'string' && typeof data.challenge === 'string' && CHALLENGE.test(data.challenge) && typeof data.origin === 'string') {
      return { type: data.type, challenge: data.challenge, origin: data.origin }
    }
  } catch {}
  throw apiError('VALIDATION_FAILED', 'the passkey response has unreadable client data')
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
 * then the origin (an exact member of WEBAUTHN_ORIGINS), then the RP ID hash when given.
 */
export function originRefusal (data: ClientData, type: 'webauthn.get' | 'webauthn.create', origins: readonly string[], rpIdHash: Buffer | null, rpId: string): ErrorCode | null {
  if (data.type !== type) return 'PASSKEY_INVALID'
  if (!origins.includes(data.origin)) return 'PASSKEY_ORIGIN_MISMATCH'
  if (rpIdHash !== null && !rpIdHash.equals(createHash('sha256').update(rpId).digest())) return 'PASSKEY_RP_ID_MISMATCH'
  return null
}
