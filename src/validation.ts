// Schema validation: bodies are checked as sent (no coercion, no silent stripping); query strings may coerce numbers.
import AjvCompiler from '@fastify/ajv-compiler'
import type { FastifyServerOptions } from 'fastify'

const buildAjv = AjvCompiler()

// Fastify's defaults remove unknown properties and coerce types, which would turn a
// mistyped or extra field into a silently "valid" request (README, Errors).
const bodyOptions = { coerceTypes: false, removeAdditional: false, useDefaults: true, allErrors: false } as const
const otherOptions = { coerceTypes: 'array', removeAdditional: false, useDefaults: true, allErrors: false } as const

type ExternalSchemas = Parameters<typeof buildAjv>[0]

interface Validate {
  (data: unknown): boolean
  errors?: unknown
}

/**
 * Coercing, ajv reads "Infinity" and "1e400" as Infinity, then skips `minimum` and `maximum`
 * for a number that is not finite (regression: `?limit=Infinity` reached the database, a 500).
 * Such a value fails here, as a mistyped one does.
 */
function finiteNumbersOnly (validate: Validate): Validate {
  const checked: Validate = (data: unknown) => {
    if (!validate(data)) {
      checked.errors = validate.errors
      return false
    }
    const key = typeof data === 'object' && data !== null
      ? Object.keys(data).find(name => [(data as Record<string, unknown>)[name]].flat().some(value => typeof value === 'number' && !Number.isFinite(value)))
      : undefined
    if (key === undefined) return true
    checked.errors = [{ instancePath: `/${key}`, schemaPath: '#/type', keyword: 'type', params: { type: 'number' }, message: 'must be a finite number' }]
    return false
  }
  return checked
}

function buildValidator (externalSchemas: ExternalSchemas) {
  const strict = buildAjv(externalSchemas, { customOptions: bodyOptions })
  const lenient = buildAjv(externalSchemas, { customOptions: otherOptions })
  return (route: AjvCompiler.RouteDefinition) => route.httpPart === 'body' ? strict(route) : finiteNumbersOnly(lenient(route) as Validate)
}

type ValidatorFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator']

export const schemaController: FastifyServerOptions['schemaController'] = {
  // Fastify calls the compiler with the route definition, as @fastify/ajv-compiler's own
  // factory expects; its published type names the schema alone, hence the cast.
  compilersFactory: { buildValidator: buildValidator as unknown as ValidatorFactory }
}
