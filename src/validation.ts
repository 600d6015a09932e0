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

interface SchemaError {
  instancePath: string
  keyword: string
  message?: string
  params: { allowedValue?: unknown, allowedValues?: unknown[] }
}

/**
 * Fastify's words for a refusal ("body/role must …", each error joined by a comma), but naming
 * the values a `const`, an `enum` or a choice of constants allows: ajv says "must be equal to
 * constant" once for each value, then "must match a schema in anyOf".
 */
export function schemaErrorFormatter (errors: SchemaError[], dataVar: string): Error {
  const messages: string[] = []
  const listed = (values: unknown[] = [], separator = ', ') => values.map(value => JSON.stringify(value)).join(separator)
  let constants: { at: string, values: unknown[] } | undefined
  const flush = (choice: boolean) => {
    if (constants !== undefined) messages.push(`${constants.at} must be ${choice ? `one of: ${listed(constants.values)}` : listed(constants.values, ' or ')}`)
    constants = undefined
  }
  for (const error of errors) {
    const at = `${dataVar}${error.instancePath}`
    if (error.keyword === 'const') {
      if (constants?.at !== at) flush(false)
      constants ??= { at, values: [] }
      constants.values.push(error.params.allowedValue)
    } else if (error.keyword === 'anyOf' && constants?.at === at) {
      flush(true)
    } else {
      flush(false)
      messages.push(`${at} ${error.keyword === 'enum' ? `must be one of: ${listed(error.params.allowedValues)}` : error.message ?? 'is invalid'}`)
    }
  }
  flush(false)
  return new Error(messages.join(', '))
}

type ValidatorFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator']

export const schemaController: FastifyServerOptions['schemaController'] = {
  // Fastify calls the compiler with the route definition, as @fastify/ajv-compiler's own
  // factory expects; its published type names the schema alone, hence the cast.
  compilersFactory: { buildValidator: buildValidator as unknown as ValidatorFactory }
}
