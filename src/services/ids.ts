// The one spelling of a UUID id (a user, a session, an audit entry) wherever the API takes one: a path, a query, a cursor.

/**
 * A UUID as PostgreSQL prints it, and so as the API hands ids out: lowercase hex in 8-4-4-4-12
 * groups, nothing around it. The `uuid` format of JSON Schema validators also takes a
 * `urn:uuid:` prefix, which PostgreSQL refuses (a 500, not a 400), and upper case, a second
 * spelling of the same id wherever ids are compared as text (a rate limit's key, "is this the
 * caller's own session").
 */
export const uuidPattern = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
