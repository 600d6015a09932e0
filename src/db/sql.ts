// Named statements for the hot paths (/users/me, login, refresh, registration and its mail), on the pool Prisma also uses; the homes of their tables hold them.
import pg from 'pg'

/**
 * Why not Prisma's $queryRaw: each call passes Prisma's request pipeline and interpreter and
 * is planned again, which cost these routes a tenth to two thirds of their throughput
 * (docs/benchmarks.md, "The hot paths' statements"). A statement here is prepared once per
 * connection.
 */
export type Sql = Pick<pg.Pool, 'query'>

const TIMESTAMP_OID = 1114

/**
 * Prisma stores DateTime as `timestamp(3)` holding UTC. pg would read it as local time;
 * here it is read as UTC. Parameters go in as `toISOString()` strings, whose `Z` PostgreSQL
 * drops for this type, leaving the UTC wall-clock time: see `iso`.
 */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === TIMESTAMP_OID ? (value: string) => new Date(`${value}Z`) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser
}

/** A named statement: PostgreSQL parses and plans it once per connection, not at every call. */
export function statement<Row extends pg.QueryResultRow> (name: string, text: string) {
  return async (sql: Sql, values: unknown[]): Promise<pg.QueryResult<Row>> =>
    await sql.query<Row>({ name, text, values, types })
}

/** A timestamp parameter. */
export function iso (date: Date): string {
  return date.toISOString()
}
