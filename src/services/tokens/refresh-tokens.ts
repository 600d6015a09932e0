// Refresh tokens: opaque values derived from a server key, never stored.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

export interface RefreshTokenParts {
  sessionId: string
  generation: number
  mac: Buffer
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
// 32 bytes in unpadded base64url; its last character's two unused bits are zero.
const MAC = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/

/**
 * Refresh tokens are `<sessionId>.<generation>.<mac>` where mac = HMAC-SHA256 of the
 * session id, its generation and a per-session random salt, under a key that never
 * touches the database. Nothing about the token is stored: the database alone cannot
 * forge one, the key alone cannot either, and the token of any generation can be
 * re-derived, which gives every concurrent caller of the grace window the same successor.
 */
export function createRefreshTokenCodec (key: Buffer) {
  const macOf = (sessionId: string, generation: number, salt: Uint8Array) =>
    createHmac('sha256', key).update(`${sessionId}.${generation}.`).update(salt).digest()

  return {
    newSalt: (): Uint8Array<ArrayBuffer> => new Uint8Array(randomBytes(32)),

    encode (sessionId: string, generation: number, salt: Uint8Array): string {
      return `${sessionId}.${generation}.${macOf(sessionId, generation, salt).toString('base64url')}`
    },

    /** Splits a presented token; null when it cannot be one of ours. */
    decode (token: string): RefreshTokenParts | null {
      const [sessionId, generationText, macText, extra] = token.split('.')
      if (extra !== undefined || sessionId === undefined || macText === undefined || !UUID.test(sessionId)) return null
      if (generationText === undefined || !/^(0|[1-9][0-9]{0,8})$/.test(generationText)) return null
      // One spelling only: Node's decoder also takes padding, '+' and '/', stray characters
      // and set unused bits, and anything keyed on the token's text would see another token.
      if (!MAC.test(macText)) return null
      return { sessionId, generation: Number(generationText), mac: Buffer.from(macText, 'base64url') }
    },

    /** Constant-time check that `parts` is the token of `generation` for this session's salt. */
    matches (parts: RefreshTokenParts, generation: number, salt: Uint8Array): boolean {
      return timingSafeEqual(parts.mac, macOf(parts.sessionId, generation, salt))
    }
  }
}

export type RefreshTokenCodec = ReturnType<typeof createRefreshTokenCodec>
