// Each distinct schema is compiled once per process, whichever route or app asks for it.
import { createHash } from 'node:crypto'
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'

/** Names a JSON text by its digest: the cache keeps a few bytes a schema rather than its text. */
const digestOf = (value: unknown): string => createHash('sha256').update(JSON.stringify(value) ?? '').digest('base64')

/**
 * The routes repeat their error responses, and every app built in one process (the tests build
 * hundreds) would otherwise compile every schema again: generating and evaluating that code was
 * about half of building the app. A compiled validator or serializer depends only on its schema,
 * on what its factory was given (the schemas added by `addSchema`, options) and on the route's
 * fields that `part` names, so the same JSON of all three gets the same function. Sharing one is
 * safe: a serializer keeps nothing between calls, and a validator's `errors` is read right after
 * its call, before any other can run.
 */
export function compiledOnce<Given extends unknown[], Route extends { schema?: unknown }, Compiled> (
  factory: (...given: Given) => (route: Route) => Compiled,
  part: (route: Route) => string = () => ''
): (...given: Given) => (route: Route) => Compiled {
  const contexts = new Map<string, Map<string, Compiled>>()
  return (...given) => {
    const build = factory(...given)
    const context = digestOf(given)
    const compiled = contexts.get(context) ?? new Map<string, Compiled>()
    contexts.set(context, compiled)
    return route => {
      const key = `${part(route)} ${digestOf(route.schema)}`
      let found = compiled.get(key)
      if (found === undefined) {
        found = build(route)
        compiled.set(key, found)
      }
      return found
    }
  }
}

/** Fastify's own serializer factory (fast-json-stringify), compiling each response schema once. */
export const buildSerializer = compiledOnce(SerializerSelector())
