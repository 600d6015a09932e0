// Keyset pagination over (createdAt, id), newest first: rows inserted while a client pages
// through are never repeated or skipped, unlike OFFSET.
import { apiError } from '../errors.js'

export interface Page<T> {
  items: T[]
  nextCursor: string | null
}

export interface Position {
  createdAt: Date
  id: string
}

/** An opaque cursor for the position after `row`. */
export function encodeCursor (row: Position): string {
  return Buffer.from(`${row.createdAt.toISOString()}|${row.id}`).toString('base64url')
}

/** The position a cursor names; a cursor that is not one of ours is a 400. */
export function decodeCursor (cursor: string | undefined): Position | null {
  if (cursor === undefined) return null
  const [at, id, extra] = Buffer.from(cursor, 'base64url').toString().split('|')
  const createdAt = new Date(at ?? '')
  if (extra !== undefined || id === undefined || !/^[0-9a-f-]{36}$/.test(id) || Number.isNaN(createdAt.getTime())) {
    throw apiError('VALIDATION_FAILED', 'querystring/cursor is not a valid cursor')
  }
  return { createdAt, id }
}

/** The where-clause for rows after `position` in (createdAt desc, id desc) order. */
export function after (position: Position | null) {
  if (position === null) return {}
  return { OR: [{ createdAt: { lt: position.createdAt } }, { createdAt: position.createdAt, id: { lt: position.id } }] }
}
