// A credential no authenticator holds: an unknown credential id is checked against it, so it costs what a known one does.
import { generateKeyPairSync } from 'node:crypto'
import type { WebAuthnCredential } from '@simplewebauthn/server'
import { webauthnHelpers } from './webauthn.js'

/** A fresh ES256 public key in COSE form (RFC 9053 7.1.1: kty EC2, alg ES256, crv P-256, x, y). */
export async function decoyCredential (): Promise<WebAuthnCredential> {
  const { isoCBOR } = await webauthnHelpers()
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = publicKey.export({ format: 'jwk' })
  const cose = new Map<number, number | Uint8Array>([
    [1, 2], [3, -7], [-1, 1],
    [-2, new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'))],
    [-3, new Uint8Array(Buffer.from(jwk.y ?? '', 'base64url'))]
  ])
  return { id: 'decoy', publicKey: isoCBOR.encode(cose), counter: 0 }
}
