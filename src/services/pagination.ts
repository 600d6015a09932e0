// Keyset pagination: a cursor names where the last row shown stands in the list's order (a time
// and an id), not the row itself, so rows inserted or ended while a client pages through are
// never repeated or skipped, unlike OFFSET or a cursor on the row.
import { apiError } from '../errors.js'
import { uuidPattern } from './ids.js'

export interface Page<T> {
  items: T[]
  nextCursor: string | null
}

/** A row's place in a list ordered by a time, then by id. */
export interface Position {
  at: Date
  id: string
}

const uuid = new RegExp(uuidPattern)

/** An opaque cursor for the position after `position`. */
export function encodeCursor ({ at, id }: Position): string {
  return Buffer.from(`${at.toISOString()}|${id}`).toString('base64url')
}

/**
 * The position a cursor names; a cursor that is not one of ours is a 400. Both parts reach
 * PostgreSQL, so the cursor is held to what the service itself writes, spelled as it writes
 * it: an id in its one spelling, a time within the years 1970 to 9999 (a year PostgreSQL's
 * timestamp cannot hold was a 500) as toISOString spells it (a date alone, "24:00" or
 * "Feb 30" were taken for some time or other).
 */
export function decodeCursor (cursor: string | undefined): Position | null {
  if (cursor === undefined) return null
  const [time, id, extra] = Buffer.from(cursor, 'base64url').toString().split('|')
  const at = new Date(time ?? '')
  const year = at.getUTCFullYear()
  if (extra !== undefined || id === undefined || !uuid.test(id) || !(year >= 1970 && year <= 9999) || encodeCursor({ at, id }) !== cursor) {
    throw apiError('VALIDATION_FAILED', 'querystring/cursor is not a valid cursor')
  }
  return { at, id }
}

/** The where-clause for rows after `position` in (createdAt desc, id desc) order. */
export function after (position: Position | null) {
  if (position === null) return {}
  return { OR: [{ createdAt: { lt: position.at } }, { createdAt: position.at, id: { lt: position.id } }] }
}
