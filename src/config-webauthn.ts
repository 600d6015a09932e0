// The passkey (WebAuthn) settings: the relying party's id and name, and the origins a ceremony may come from.
import { Type } from '@sinclair/typebox'

export const WebauthnSettingsSchema = {
  WEBAUTHN_RP_ID: Type.Optional(Type.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9.-]+$', description: 'the relying party id passkeys are bound to: the PUBLIC_URL host or a registrable suffix of it; default the PUBLIC_URL host' })),
  WEBAUTHN_RP_NAME: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'the name browsers show when a passkey is made; default MFA_ISSUER or the PUBLIC_URL host' })),
  WEBAUTHN_ORIGINS: Type.Optional(Type.String({ minLength: 1, description: 'comma-separated origins whose pages may use passkeys; default PUBLIC_URL and CORS_ORIGINS' }))
}

export interface WebauthnSettings {
  rpId: string
  rpName: string
  origins: string[]
}

interface WebauthnInput {
  PUBLIC_URL: string
  CORS_ORIGINS: string
  MFA_ISSUER?: string | undefined
  WEBAUTHN_RP_ID?: string | undefined
  WEBAUTHN_RP_NAME?: string | undefined
  WEBAUTHN_ORIGINS?: string | undefined
}

const listOf = (value: string) => value.split(',').map(item => item.trim()).filter(item => item.length > 0)

/** Why `origin` cannot use passkeys of `rpId`, or null when it can. */
function originProblem (origin: string, rpId: string): string | null {
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    return `WEBAUTHN_ORIGINS: "${origin}" is not an exact origin like https://app.example.com`
  }
  const local = url.hostname === 'localhost' || url.hostname.endsWith('.localhost')
  if (url.origin !== origin || !(url.protocol === 'https:' || (url.protocol === 'http:' && local))) {
    return `WEBAUTHN_ORIGINS: "${origin}" must be an exact https origin (http only on localhost)`
  }
  if (url.hostname !== rpId && !url.hostname.endsWith(`.${rpId}`)) {
    return `WEBAUTHN_RP_ID: "${rpId}" is neither the host of ${origin} nor a parent domain of it`
  }
  return null
}

/**
 * The settings in force, with their defaults derived from PUBLIC_URL and CORS_ORIGINS. A
 * derived origin that could never use the RP ID (another site, plain http) is left out
 * rather than refused: a deployment that does not use passkeys needs no passkey settings.
 */
export function webauthnSettingsOf (config: WebauthnInput): WebauthnSettings {
  const host = new URL(config.PUBLIC_URL).hostname
  const rpId = config.WEBAUTHN_RP_ID ?? host
  const origins = config.WEBAUTHN_ORIGINS === undefined
    ? listOf([config.PUBLIC_URL, config.CORS_ORIGINS].join(',')).filter(origin => originProblem(origin, rpId) === null)
    : listOf(config.WEBAUTHN_ORIGINS)
  return { rpId, rpName: config.WEBAUTHN_RP_NAME ?? config.MFA_ISSUER ?? host, origins }
}

/**
 * WebAuthn Level 3, 5.1.4.1 and 13.4.9: a browser uses an RP ID only from a page whose host is
 * that id or a subdomain of it, and only in a secure context (https, or http on localhost).
 * An origin set in WEBAUTHN_ORIGINS that could never use the RP ID is a configuration
 * mistake, reported at start; so is an RP ID set that no origin can use.
 */
export function webauthnProblems (config: WebauthnInput): string[] {
  const { rpId, origins } = webauthnSettingsOf(config)
  if (config.WEBAUTHN_ORIGINS === undefined) {
    return config.WEBAUTHN_RP_ID !== undefined && origins.length === 0
      ? [`WEBAUTHN_RP_ID: "${rpId}" cannot be used by PUBLIC_URL or any of CORS_ORIGINS; set WEBAUTHN_ORIGINS`]
      : []
  }
  return origins.map(origin => originProblem(origin, rpId)).filter(problem => problem !== null)
}
