// Schema validation: bodies are checked as sent (no coercion, no silent stripping); query strings may coerce numbers.
import AjvCompiler from '@fastify/ajv-compiler'
import type { FastifyServerOptions } from 'fastify'
import { buildSerializer, compiledOnce } from './compiled-schemas.js'

const buildAjv = AjvCompiler()

// Fastify's defaults remove unknown properties and coerce types, which would turn a
// mistyped or extra field into a silently "valid" request (docs/api.md, Errors).
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
  params: { allowedValue?: unknown, allowedValues?: unknown[], type?: string }
}

/** What one error says of the value at its place, and the value it allows when it allows one only. */
function told (error: SchemaError): { text: string, allows?: unknown } {
  const listed = (values: unknown[] = []) => values.map(value => JSON.stringify(value)).join(', ')
  if (error.keyword === 'const') return { text: `must be ${JSON.stringify(error.params.allowedValue)}`, allows: error.params.allowedValue }
  if (error.keyword === 'enum') return { text: `must be one of: ${listed(error.params.allowedValues)}` }
  if (error.keyword === 'type' && error.params.type === 'null') return { text: 'must be null', allows: null }
  return { text: error.message ?? 'is invalid' }
}

/**
 * Fastify's words for a refusal ("body/role must …", each error joined by a comma), but naming
 * the values a `const`, an `enum` or a choice of values allows: ajv says "must be equal to
 * constant" once for each value, then "must match a schema in anyOf".
 */
export function schemaErrorFormatter (errors: SchemaError[], dataVar: string): Error {
  const said: Array<{ path: string, text: string, allows?: unknown }> = []
  for (const error of errors) {
    const at = `${dataVar}${error.instancePath}`
    if (error.keyword !== 'anyOf') {
      const { text, allows } = told(error)
      said.push({ path: error.instancePath, text: `${at} ${text}`, ...(allows === undefined ? {} : { allows }) })
      continue
    }
    // Its branches' errors came just before it, at its place or within it. A choice of values
    // is said in one; any other choice keeps what each branch said (regression: "must match a
    // schema in anyOf" alone, for a nullable string too long), and ajv's words after them.
    let first = said.length
    while (first > 0 && (said[first - 1]?.path === error.instancePath || said[first - 1]?.path.startsWith(`${error.instancePath}/`) === true)) first -= 1
    const branches = said.slice(first)
    if (branches.length > 0 && branches.every(branch => branch.path === error.instancePath && 'allows' in branch)) {
      said.splice(first, branches.length, { path: error.instancePath, text: `${at} must be one of: ${branches.map(branch => JSON.stringify(branch.allows)).join(', ')}` })
    } else {
      said.push({ path: error.instancePath, text: `${at} ${error.message ?? 'is invalid'}` })
    }
  }
  return new Error(said.map(({ text }) => text).join(', '))
}

type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>

export const schemaController: FastifyServerOptions['schemaController'] = {
  // Fastify calls the compilers with the route definition, as @fastify/ajv-compiler's own
  // factory expects; its published type names the schema alone, hence the cast.
  compilersFactory: {
    buildValidator: compiledOnce(buildValidator, route => route.httpPart === 'body' ? 'body' : 'other') as unknown as CompilersFactory['buildValidator'],
    buildSerializer
  }
}
