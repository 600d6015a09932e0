// Schema validation: bodies are checked as sent (no coercion, no silent stripping); query strings may coerce numbers.
import AjvCompiler from '@fastify/ajv-compiler'
import type { FastifyServerOptions } from 'fastify'

const buildAjv = AjvCompiler()

// Fastify's defaults remove unknown properties and coerce types, which would turn a
// mistyped or extra field into a silently "valid" request (DESIGN 5.1).
const bodyOptions = { coerceTypes: false, removeAdditional: false, useDefaults: true, allErrors: false } as const
const otherOptions = { coerceTypes: 'array', removeAdditional: false, useDefaults: true, allErrors: false } as const

type ExternalSchemas = Parameters<typeof buildAjv>[0]

function buildValidator (externalSchemas: ExternalSchemas) {
  const strict = buildAjv(externalSchemas, { customOptions: bodyOptions })
  const lenient = buildAjv(externalSchemas, { customOptions: otherOptions })
  return (route: AjvCompiler.RouteDefinition) => route.httpPart === 'body' ? strict(route) : lenient(route)
}

type ValidatorFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator']

export const schemaController: FastifyServerOptions['schemaController'] = {
  // Fastify calls the compiler with the route definition, as @fastify/ajv-compiler's own
  // factory expects; its published type names the schema alone, hence the cast.
  compilersFactory: { buildValidator: buildValidator as unknown as ValidatorFactory }
}
