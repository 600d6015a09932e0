// Passkeys (WebAuthn): the JSON forms of ceremony options and responses (WebAuthn Level 3, 5.1.8 toJSON()), and the stored passkey.
import { Type } from '@sinclair/typebox'
import { DeviceToken } from './common.js'

const Base64Url = (maxLength: number, description: string) => Type.String({ minLength: 1, maxLength, pattern: '^[A-Za-z0-9_-]+$', description })

// WebAuthn Level 3, 7.1 step 25: a credential id is at most 1023 bytes, 1364 characters of unpadded base64url.
const CredentialId = (description: string) => Base64Url(1364, description)

const Transports = Type.Array(Type.String({ maxLength: 32 }), { maxItems: 10, description: 'how the browser can reach the authenticator (internal, hybrid, usb, nfc, ble…)' })

// Browsers add outputs of extensions; they are not used, but a browser may send them.
const ClientExtensionResults = Type.Object({}, { additionalProperties: true, description: 'extension outputs (not used)' })

const Attachment = Type.Optional(Type.Union([Type.Literal('platform'), Type.Literal('cross-platform')]))

/** What every credential of `PublicKeyCredential.toJSON()` starts with. */
const credential = {
  id: CredentialId('the credential id'),
  rawId: CredentialId('the credential id, again (the same string)'),
  type: Type.Literal('public-key'),
  authenticatorAttachment: Attachment,
  clientExtensionResults: ClientExtensionResults,
}

/** What `PublicKeyCredential.toJSON()` (or @simplewebauthn/browser's startAuthentication) gives for an assertion. */
export const PasskeyAssertion = Type.Object({
  ...credential,
  response: Type.Object({
    clientDataJSON: Base64Url(4096, 'the client data the browser signed over'),
    authenticatorData: Base64Url(4096, 'the authenticator data'),
    signature: Base64Url(1024, 'the signature over authenticatorData and the client data hash'),
    userHandle: Type.Optional(Base64Url(128, 'the user handle of a discoverable credential'))
  }, { additionalProperties: false })
}, { additionalProperties: false, title: 'Passkey assertion', description: 'PublicKeyCredential.toJSON() of navigator.credentials.get()' })

/** What `PublicKeyCredential.toJSON()` (or startRegistration) gives for a new credential. */
export const PasskeyAttestation = Type.Object({
  ...credential,
  response: Type.Object({
    clientDataJSON: Base64Url(4096, 'the client data the browser signed over'),
    attestationObject: Base64Url(16384, 'the attestation object (CBOR)'),
    authenticatorData: Type.Optional(Base64Url(4096, 'the authenticator data, again')),
    transports: Type.Optional(Transports),
    publicKeyAlgorithm: Type.Optional(Type.Integer()),
    publicKey: Type.Optional(Base64Url(4096, 'the public key (SPKI), again'))
  }, { additionalProperties: false })
}, { additionalProperties: false, title: 'Passkey attestation', description: 'PublicKeyCredential.toJSON() of navigator.credentials.create()' })

const Descriptor = Type.Object({ id: Type.String(), type: Type.String({ description: 'public-key' }), transports: Type.Optional(Transports) })

/** Hand to `PublicKeyCredential.parseRequestOptionsFromJSON()` (or startAuthentication({ optionsJSON })). */
export const PasskeyRequestOptions = Type.Object({
  challenge: Type.String({ description: 'base64url; single use, 5 minutes' }),
  rpId: Type.Optional(Type.String()),
  timeout: Type.Optional(Type.Integer()),
  userVerification: Type.Optional(Type.String()),
  allowCredentials: Type.Optional(Type.Array(Descriptor))
}, { additionalProperties: true, title: 'Passkey request options' })

/** Hand to `PublicKeyCredential.parseCreationOptionsFromJSON()` (or startRegistration({ optionsJSON })). */
export const PasskeyCreationOptions = Type.Object({
  challenge: Type.String({ description: 'base64url; single use, 5 minutes, bound to this session' }),
  rp: Type.Object({ id: Type.Optional(Type.String()), name: Type.String() }),
  user: Type.Object({ id: Type.String(), name: Type.String(), displayName: Type.String() }),
  pubKeyCredParams: Type.Array(Type.Object({ alg: Type.Integer(), type: Type.Literal('public-key') })),
  timeout: Type.Optional(Type.Integer()),
  excludeCredentials: Type.Optional(Type.Array(Descriptor)),
  authenticatorSelection: Type.Optional(Type.Object({}, { additionalProperties: true })),
  attestation: Type.Optional(Type.String())
}, { additionalProperties: true, title: 'Passkey creation options' })

// Quoted in the owner's security notices, where an intruder who registers a passkey writes it:
// no control, format or default-ignorable character (U+202E showed the notice's remedy
// reversed; U+200B, U+00AD, tag characters hide text), but what scripts and emoji need, each
// where it belongs: one variation selector after a character, a joiner between two, the tags
// of the flags of England, Scotland and Wales (runs of selectors or joiners hid text too);
// no line separator, and at least one character that shows: not a space, a mark alone or a
// blank letter.
const character = '(?:\\u{1F3F4}\\u{E0067}\\u{E0062}(?:\\u{E0065}\\u{E006E}\\u{E0067}|\\u{E0073}\\u{E0063}\\u{E0074}|\\u{E0077}\\u{E006C}\\u{E0073})\\u{E007F}|[^\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}\\p{DI}][\\u180b-\\u180d\\u180f\\ufe00-\\ufe0f\\u{E0100}-\\u{E01EF}]?)'
const PasskeyName = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: `^(?=.*[^\\p{Z}\\p{C}\\p{M}\\p{DI}\\u2800\\u{1D159}])${character}(?:[\\u200c\\u200d]?${character})*$`,
  description: 'a name for the owner to tell passkeys apart, trimmed; at least one character that shows, and no control, format or default-ignorable character (bidirectional controls, zero-width spaces…) but what scripts and emoji need where they belong (a variation selector after a character, a zero-width joiner between two, the flags of England, Scotland and Wales), nor a line separator'
})

export const Passkey = Type.Object({
  id: Type.String({ description: 'the credential id (base64url)' }),
  name: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  backedUp: Type.Boolean({ description: 'whether the passkey is synced (backed up) beyond this authenticator' }),
  transports: Transports,
  aaguid: Type.String({ description: "the authenticator model's AAGUID (all zeros when it does not say)" }),
  passwordless: Type.Boolean({ description: 'whether it signs in alone; false after a password change or reset, until it is used as the second step of a sign-in with the password' })
}, { $id: 'Passkey', title: 'Passkey' })

export const PasskeyResponse = Type.Object({ passkey: Type.Ref('Passkey') })
export const PasskeyList = Type.Object({ items: Type.Array(Type.Ref('Passkey')) })

export const RegisterPasskeyBody = Type.Object({ response: PasskeyAttestation, name: Type.Optional(PasskeyName) }, { additionalProperties: false })
export const RenamePasskeyBody = Type.Object({ name: PasskeyName }, { additionalProperties: false })
export const PasskeyParams = Type.Object({ id: CredentialId('the credential id') }, { additionalProperties: false })
export const PasskeyLoginBody = Type.Object({
  response: PasskeyAssertion,
  transport: Type.Optional(Type.Literal('cookie', { description: 'ask for HttpOnly cookies instead of tokens in the body (browsers always get cookies)' })),
  deviceToken: Type.Optional(DeviceToken)
}, { additionalProperties: false })
export const MfaWebauthnOptionsBody = Type.Object({ mfaToken: Type.String({ minLength: 1, maxLength: 128, description: 'the mfaToken of the login answer' }) }, { additionalProperties: false })
