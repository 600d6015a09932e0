// The private glue between Prisma's WASM schema engine and `pg`: written against one engine build (ENGINE_BUILD), pinned by test/db/schema-engine-pin.test.ts.
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { PrismaPg } from '@prisma/adapter-pg'
import { bindMigrationAwareSqlAdapterFactory, ColumnTypeEnum } from '@prisma/driver-adapter-utils'
import type { ErrorRegistry, SqlDriverAdapter, SqlMigrationAwareDriverAdapterFactory, SqlQueryable } from '@prisma/driver-adapter-utils'
import * as glue from '@prisma/schema-engine-wasm/schema_engine_bg'
import type { SchemaEngine } from '@prisma/schema-engine-wasm/schema_engine_bg'
import pg from 'pg'

/**
 * The `@prisma/schema-engine-wasm` version this glue drives: its wasm-bindgen exports and the
 * adapter's quirks worked around below belong to this build. A Prisma upgrade changes it, and
 * the pin test fails until the glue has been checked against the new build.
 */
export const ENGINE_BUILD = '7.10.0-4.0edf323efd1d98336f3f0a68684b56f689b900d3'

export type { SchemaEngine }

// pg_catalog's one-byte "char" (pg_constraint.contype, …), which the engine's introspection reads.
const CHAR_OID = 18
const TEXT_OID = 25

/** A failure reported by the schema engine or the database: expected, its message is meant for humans. */
export class SchemaEngineError extends Error {
  override name = 'SchemaEngineError'
}

// @types/node 20 does not declare the WebAssembly global (lib.dom does); the part used here.
interface WebAssemblyApi {
  compile: (bytes: Uint8Array) => Promise<object>
  instantiate: (module: object, imports: Record<string, Record<string, unknown>>) => Promise<{ exports: Record<string, unknown> }>
}
const { WebAssembly: wasmApi } = globalThis as unknown as { WebAssembly: WebAssemblyApi }

// Where wasm-bindgen code built by Prisma records a Rust panic's message before trapping
// (the prisma CLI installs the same object); shared with any other Prisma WASM module.
interface PanicRegistry { message: string, set_message: (message: string) => void }
const globals = globalThis as { PRISMA_WASM_PANIC_REGISTRY?: PanicRegistry }
globals.PRISMA_WASM_PANIC_REGISTRY ??= {
  message: '',
  set_message (message) { this.message = message }
}
const panics = globals.PRISMA_WASM_PANIC_REGISTRY

let engineModule: Promise<void> | undefined

/**
 * Compiles and instantiates the WASM engine once per process. The package is a wasm-bindgen
 * "bundler" build whose entry point imports the `.wasm` directly, which Node cannot do, so
 * the glue module is wired to the instance by hand, as that entry point would.
 */
function loadEngineModule (): Promise<void> {
  engineModule ??= (async () => {
    const require = createRequire(import.meta.url)
    const gluePath = require.resolve('@prisma/schema-engine-wasm/schema_engine_bg')
    const module = await wasmApi.compile(await readFile(join(dirname(gluePath), 'schema_engine_bg.wasm')))
    const imports: Record<string, unknown> = { ...glue }
    // The engine arms timers (its 10 s advisory-lock timeout, …) that it can never clear: the
    // glue imports no clearTimeout. Unreferenced, they cannot keep the process alive for 10 s
    // after the work is done; `withEngine` keeps it alive while an engine runs.
    for (const name of Object.keys(imports).filter((name) => name.startsWith('__wbg_setTimeout_'))) {
      const setTimer = imports[name] as (callback: () => void, ms: number) => NodeJS.Timeout
      imports[name] = (callback: () => void, ms: number) => setTimer(callback, ms).unref()
    }
    const instance = await wasmApi.instantiate(module, { './schema_engine_bg.js': imports })
    glue.__wbg_set_wasm(instance.exports)
    const start = instance.exports.__wbindgen_start as () => void
    start()
  })()
  engineModule.catch(() => { engineModule = undefined })
  return engineModule
}

// Rows of results that had "char" columns → their indices (see `announceCharColumnsAsText`).
const charColumns = new WeakMap<unknown[], number[]>()

/**
 * adapter-pg 7.10 rejects result columns of pg_catalog's one-byte "char" type (OID 18),
 * which the engine's schema introspection selects (pg_constraint.contype, …). They are
 * announced to the adapter as text, then reported to the engine as characters, the type it
 * reads them as, by `reportCharColumns`. Every query path of pg goes through `client.query`.
 */
function announceCharColumnsAsText (client: pg.PoolClient): void {
  type Query = (...args: unknown[]) => unknown
  type Callback = (error: unknown, result: unknown) => void
  const query = client.query.bind(client) as Query
  const retype = (result: unknown): unknown => {
    const { fields, rows } = (result ?? {}) as Partial<pg.QueryResult<unknown[]>>
    const indices: number[] = []
    fields?.forEach((field, index) => {
      if (field.dataTypeID !== CHAR_OID) return
      field.dataTypeID = TEXT_OID
      indices.push(index)
    })
    if (rows !== undefined && indices.length > 0) charColumns.set(rows, indices)
    return result
  }
  const patched: Query = (...args) => {
    const callback = args.at(-1)
    if (typeof callback === 'function') {
      args[args.length - 1] = (error: unknown, result: unknown) => (callback as Callback)(error, retype(result))
      return query(...args)
    }
    const pending = query(...args)
    return pending instanceof Promise ? pending.then(retype) : pending
  }
  ;(client as { query: unknown }).query = patched
}

/** The adapter's half of `announceCharColumnsAsText`: it returns pg's `rows` array as is. */
function reportCharColumns<T extends SqlQueryable> (queryable: T): T {
  const queryRaw = queryable.queryRaw.bind(queryable)
  queryable.queryRaw = async (query) => {
    const result = await queryRaw(query)
    for (const index of charColumns.get(result.rows) ?? []) result.columnTypes[index] = ColumnTypeEnum.Character
    return result
  }
  return queryable
}

/**
 * An adapter on `adapters`' pool whose transactions, too, report "char" columns, and which
 * runs a migration script whole. adapter-pg splits scripts at every `;`, breaking
 * dollar-quoted bodies and string literals; the native engine sends the script as one
 * simple query, which is what a query without parameters is in pg.
 */
async function connect (adapters: PrismaPg): Promise<SqlDriverAdapter> {
  const adapter = reportCharColumns(await adapters.connect())
  const startTransaction = adapter.startTransaction.bind(adapter)
  adapter.startTransaction = async (isolationLevel) => reportCharColumns(await startTransaction(isolationLevel))
  adapter.executeScript = async (script) => { await adapter.executeRaw({ sql: script, args: [], argTypes: [] }) }
  return adapter
}

/**
 * One connection only: the engine takes Prisma's session-level advisory lock on whichever
 * pooled connection runs its query, and never unlocks (the native engine relies on closing
 * its single connection). With one connection, the lock covers every migration statement
 * and lasts until `pool.end()`. It also suits PGlite, which serves one connection at a time.
 */
export function createPool (connectionString: string, connectTimeoutSeconds: number): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: 1,
    // A server that accepts the connection and never answers fails the run instead of holding it.
    // No query timeout: a migration may rightly run for minutes (an index on a large table).
    connectionTimeoutMillis: connectTimeoutSeconds * 1000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000
  })
  pool.on('connect', announceCharColumnsAsText)
  // An idle connection dropped by the server surfaces on the next query; it must not crash the process.
  pool.on('error', () => {})
  return pool
}

/**
 * Runs `work` with an engine over `pool`, then frees the engine and ends the pool. With
 * `withShadow`, the shadow database is the same database: callers pass a throwaway one.
 */
export async function withEngine<T> (pool: pg.Pool, withShadow: boolean, work: (engine: SchemaEngine) => Promise<T>): Promise<T> {
  await loadEngineModule()
  const adapters = new PrismaPg(pool)
  const factory: SqlMigrationAwareDriverAdapterFactory = {
    provider: adapters.provider,
    adapterName: adapters.adapterName,
    connect: () => connect(adapters),
    connectToShadowDb: () => withShadow
      ? connect(adapters)
      : Promise.reject(new SchemaEngineError('No shadow database is configured for this operation.'))
  }
  const bound = bindMigrationAwareSqlAdapterFactory(factory)
  const connections = new Set<pg.PoolClient>()
  const closed: Promise<unknown>[] = []
  pool.on('connect', (client) => {
    connections.add(client)
    // Settles on 'error' too: a broken socket is as good as closed.
    closed.push(once(client, 'end').catch(() => {}))
  })
  pool.on('remove', (client) => connections.delete(client))
  let engine: SchemaEngine | undefined
  // Stands in for the engine's unreferenced timers while it may be waiting on one of them.
  const keepAlive = setInterval(() => {}, 60_000)
  try {
    // Connected first: a server that refuses or does not answer in time is reported as such,
    // not as whatever the engine makes of the dropped connection.
    await pool.connect().then(client => { client.release() }, (error: Error) => {
      throw new SchemaEngineError(`cannot connect to the database: ${error.message}`)
    })
    engine = await glue.SchemaEngine.new({ datamodels: undefined }, () => {}, bound)
    return await work(engine)
  } catch (error) {
    // The engine may give up while its query still waits (its 10 s advisory-lock timeout):
    // `pool.end()` would wait for that query, possibly forever. Closing the socket ends the
    // server session, and with it the wait.
    for (const client of connections) client.connection.stream.destroy()
    throw toSchemaEngineError(error, bound.errorRegistry)
  } finally {
    try {
      engine?.free()
      // `pool.end()` resolves before the sockets are closed; the embedded server, which
      // takes one connection at a time, would still refuse the caller's next one.
      await pool.end()
      await Promise.all(closed)
    } finally {
      clearInterval(keepAlive)
    }
  }
}

/**
 * Errors the engine reports are user-facing (unreachable server, failed migration, …):
 * they become `SchemaEngineError`s. It reports adapter failures as "External error id#N"
 * and keeps the original in the registry; its own messages may end with a Rust span trace.
 */
function toSchemaEngineError (error: unknown, errors: ErrorRegistry): unknown {
  if (!(error instanceof Error) || error instanceof SchemaEngineError) return error
  const external = /External error id#(\d+)/.exec(error.message)
  if (external !== null) {
    const original = errors.consumeError(Number(external[1]))?.error
    return new SchemaEngineError(describeAdapterError(original), { cause: original ?? error })
  }
  if (error.name === 'RuntimeError' && panics.message !== '') {
    return new SchemaEngineError(`the schema engine panicked: ${panics.message}`, { cause: error })
  }
  if (error.name !== 'Error' && error.name !== 'SchemaConnectorError') return error
  return new SchemaEngineError(error.message.replace(/\n\s+0: [\s\S]*$/, '').trim(), { cause: error })
}

function describeAdapterError (error: unknown): string {
  const cause = (error as { cause?: { kind?: string, originalMessage?: string, message?: string } } | undefined)?.cause
  const message = cause?.originalMessage ?? cause?.message ?? (error instanceof Error ? error.message : undefined)
  if (message !== undefined && message !== '') return message
  if (cause?.kind !== undefined) return `Database error: ${JSON.stringify(cause)}`
  return String(error)
}
