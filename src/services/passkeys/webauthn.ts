// @simplewebauthn/server, loaded at the first passkey ceremony rather than at start: with its ASN.1 and CBOR code it holds about 4 MB of heap, which a service whose users never touch a passkey would carry for nothing (docs/benchmarks.md, Memory).
import type * as Server from '@simplewebauthn/server'
import type * as Helpers from '@simplewebauthn/server/helpers'

let server: Promise<typeof Server> | undefined
let helpers: Promise<typeof Helpers> | undefined

export const webauthn = async (): Promise<typeof Server> => await (server ??= import('@simplewebauthn/server'))

export const webauthnHelpers = async (): Promise<typeof Helpers> => await (helpers ??= import('@simplewebauthn/server/helpers'))
