// Validation messages: where and what, naming the values a choice allows, for every shape a schema can give them.
import Fastify from 'fastify'
import t from 'tap'
import { schemaErrorFormatter } from '../src/validation.js'

/** The message Fastify answers with the service's formatter, for `data` posted to a route with `schema` as its body's. */
async function messageFor (schema: object, data: unknown, allErrors = false): Promise<string> {
  const app = Fastify({ schemaErrorFormatter, ajv: { customOptions: { allErrors } } })
  app.post('/', { schema: { body: schema } }, async () => 'taken')
  const answer = await app.inject({ method: 'POST', url: '/', payload: data as object })
  await app.close()
  t.equal(answer.statusCode, 400)
  return (answer.json() as { message: string }).message
}

const choice = (...values: unknown[]) => ({ anyOf: values.map(value => value === null ? { type: 'null' } : { const: value }) })
const object = (properties: Record<string, object>) => ({ type: 'object', properties })

t.test('a choice of values is named whole, a null among them too', async t => {
  t.equal(await messageFor(object({ role: choice('user', 'admin') }), { role: 'god' }), 'body/role must be one of: "user", "admin"')
  t.equal(await messageFor(object({ by: choice('self', 'admin', null) }), { by: 'x' }), 'body/by must be one of: "self", "admin", null')
  t.equal(await messageFor(object({ a: { type: 'array', items: choice('a', 'b') } }), { a: ['a', 'x'] }), 'body/a/1 must be one of: "a", "b"')
  t.equal(await messageFor(object({ p: choice('a', 'b'), q: choice('c', 'd') }), { p: 'x', q: 'y' }, true), 'body/p must be one of: "a", "b", body/q must be one of: "c", "d"')
})

t.test('one value, an enum, and values that must all hold are said as such', async t => {
  t.equal(await messageFor(object({ transport: { const: 'cookie' } }), { transport: 'pigeon' }), 'body/transport must be "cookie"')
  t.equal(await messageFor(object({ kind: { enum: ['a', 'b'] } }), { kind: 'c' }), 'body/kind must be one of: "a", "b"')
  // Regression: read as a choice, "must be "a" or "b"".
  t.equal(await messageFor(object({ p: { allOf: [{ const: 'a' }, { const: 'b' }] } }), { p: 'x' }, true), 'body/p must be "a", body/p must be "b"')
})

t.test('a choice that is not of values only keeps what each branch said, and ajv\'s words; other refusals are as ajv says them', async t => {
  t.equal(await messageFor(object({ v: { anyOf: [{ const: 'auto' }, { type: 'integer' }] } }), { v: 'x' }), 'body/v must be "auto", body/v must be integer, body/v must match a schema in anyOf')
  // Regression: a nullable string too long said only "must match a schema in anyOf".
  t.equal(await messageFor(object({ bio: { anyOf: [{ type: 'string', maxLength: 3 }, { type: 'null' }] } }), { bio: 'long' }), 'body/bio must NOT have more than 3 characters, body/bio must be null, body/bio must match a schema in anyOf')
  t.equal(await messageFor(object({ v: { anyOf: [choice('a', 'b'), { const: 'c' }] } }), { v: 'x' }), 'body/v must be one of: "a", "b", body/v must be "c", body/v must match a schema in anyOf')
  t.equal(await messageFor({ type: 'object', required: ['password'] }, {}), 'body must have required property \'password\'')
})
