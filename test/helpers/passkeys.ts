// A software authenticator for the HTTP tests: ES256 keys from node:crypto, attestation "none", real signatures.
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { isoCBOR } from '@simplewebauthn/server/helpers'

export const TEST_ORIGIN = 'http://localhost:3000'
export const TEST_RP_ID = 'localhost'

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url')
const FLAG_UP = 0x01
const FLAG_UV = 0x04
const FLAG_AT = 0x40

export interface CeremonyOverrides {
  origin?: string
  rpId?: string
  userVerified?: boolean
  /** The signature counter to report (default: one more than the last). */
  counter?: number
  /** Sign with another key than the registered one. */
  wrongKey?: boolean
  challenge?: string
  type?: string
  /** The credential id the authenticator data carries at registration (default: this credential's). */
  credentialId?: string
  /** The ceremony ran in a frame of another origin than the page's (clientData.crossOrigin). */
  crossOrigin?: boolean
}

/** One credential of a software authenticator; `register` makes it, `assert` uses it. */
export class SoftPasskey {
  private readonly keys = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  private counter = 0
  userHandle: string | undefined

  /** `id`: the credential id, base64url (authenticators make 16 to 64 bytes; WebAuthn allows 1023). */
  constructor (readonly id: string = b64(randomBytes(16))) {}

  private coseKey (): Uint8Array {
    const jwk = this.keys.publicKey.export({ format: 'jwk' })
    return isoCBOR.encode(new Map<number, number | Uint8Array>([
      [1, 2], [3, -7], [-1, 1],
      [-2, new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'))], [-3, new Uint8Array(Buffer.from(jwk.y ?? '', 'base64url'))]
    ]))
  }

  private authData (rpId: string, flags: number, counter: number, attested?: Uint8Array, credentialId = this.id): Buffer {
    const head = Buffer.alloc(37)
    createHash('sha256').update(rpId).digest().copy(head, 0)
    head[32] = flags
    head.writeUInt32BE(counter, 33)
    if (attested === undefined) return head
    const idBytes = Buffer.from(credentialId, 'base64url')
    const idLength = Buffer.alloc(2)
    idLength.writeUInt16BE(idBytes.length)
    return Buffer.concat([head, Buffer.alloc(16), idLength, idBytes, attested])
  }

  private clientData (type: string, challenge: string, origin: string, crossOrigin = false): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin }))
  }

  /** This credential with an authenticator's response, as PublicKeyCredential.toJSON() shows it. */
  private credential<Response> (response: Response) {
    return { id: this.id, rawId: this.id, type: 'public-key' as const, clientExtensionResults: {}, response }
  }

  /** navigator.credentials.create() with these options, as PublicKeyCredential.toJSON() shows it. */
  register (options: { challenge: string, user: { id: string } }, overrides: CeremonyOverrides = {}) {
    this.userHandle = options.user.id
    const flags = FLAG_UP | FLAG_AT | (overrides.userVerified === false ? 0 : FLAG_UV)
    const authData = this.authData(overrides.rpId ?? TEST_RP_ID, flags, 0, this.coseKey(), overrides.credentialId)
    const attestationObject = isoCBOR.encode(new Map<string, unknown>([['fmt', 'none'], ['attStmt', new Map()], ['authData', new Uint8Array(authData)]]) as never)
    return this.credential({
      clientDataJSON: b64(this.clientData(overrides.type ?? 'webauthn.create', overrides.challenge ?? options.challenge, overrides.origin ?? TEST_ORIGIN, overrides.crossOrigin)),
      attestationObject: b64(attestationObject),
      transports: ['internal']
    })
  }

  /** navigator.credentials.get() with these options, as PublicKeyCredential.toJSON() shows it. */
  assert (options: { challenge: string }, overrides: CeremonyOverrides = {}) {
    const counter = overrides.counter ?? this.counter + 1
    this.counter = Math.max(this.counter, counter)
    const flags = FLAG_UP | (overrides.userVerified === false ? 0 : FLAG_UV)
    const authData = this.authData(overrides.rpId ?? TEST_RP_ID, flags, counter)
    const clientData = this.clientData(overrides.type ?? 'webauthn.get', overrides.challenge ?? options.challenge, overrides.origin ?? TEST_ORIGIN, overrides.crossOrigin)
    const key: KeyObject = overrides.wrongKey === true ? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey : this.keys.privateKey
    const signature = sign('sha256', Buffer.concat([authData, createHash('sha256').update(clientData).digest()]), { key, dsaEncoding: 'der' })
    return this.credential({
      clientDataJSON: b64(clientData),
      authenticatorData: b64(authData),
      signature: b64(signature),
      ...(this.userHandle === undefined ? {} : { userHandle: this.userHandle })
    })
  }
}

/** Registers a new software passkey for the caller of `headers` (a fresh session, whose user's password is `password`) through the API. */
export async function registerPasskey (app: FastifyInstance, headers: Record<string, string>, password: string, name?: string) {
  const passkey = new SoftPasskey()
  const options = await app.inject({ method: 'POST', url: '/auth/passkeys/register/options', headers, payload: { currentPassword: password } })
  if (options.statusCode !== 200) throw new Error(`options failed: ${options.statusCode} ${options.body}`)
  const verified = await app.inject({ method: 'POST', url: '/auth/passkeys/register/verify', headers, payload: { response: passkey.register(options.json()), ...(name === undefined ? {} : { name }) } })
  if (verified.statusCode !== 201) throw new Error(`register failed: ${verified.statusCode} ${verified.body}`)
  return passkey
}
