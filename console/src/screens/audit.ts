// The audit trail: newest first, filtered by the user concerned and by action, a page at a time.
import type { AdminApi, AuditQuery } from '../api.js'
import { hashOf, pager, type Context, type Screen } from '../context.js'
import { field, h, option, table } from '../dom.js'
import { dateTime, UUID, visible } from '../format.js'
import { auditActions, type AuditAction } from '../../../src/services/admin/audit-actions.js'

const PAGE_SIZE = 25

/** A user typed as an id, or as an email or username (looked up). */
async function userIdOf (api: AdminApi, typed: string): Promise<string | null> {
  // The API takes ids in lower case only, as it writes them.
  if (UUID.test(typed)) return typed.toLowerCase()
  const found = await api.users({ q: typed, match: 'exact', limit: 1 })
  return found.items[0]?.id ?? null
}

function details (value: unknown): string {
  if (value === null || value === undefined) return ''
  const text = visible(JSON.stringify(value))
  return text === '{}' ? '' : text
}

export async function auditScreen ({ api, params, navigate }: Context): Promise<Screen> {
  const typedUser = params.get('user') ?? ''
  const action = params.get('action') ?? ''
  const cursor = params.get('cursor') ?? undefined
  const query: AuditQuery = { limit: PAGE_SIZE }
  if ((auditActions as readonly string[]).includes(action)) query.action = action as AuditAction
  if (cursor !== undefined) query.cursor = cursor
  const subjectId = typedUser === '' ? undefined : await userIdOf(api, typedUser.trim())

  const userInput = h('input', { name: 'user', value: typedUser, maxlength: '254', autocomplete: 'off' })
  const actionSelect = h('select', { name: 'action' }, option('', 'Any action', action === ''), auditActions.map(name => option(name, name, action === name)))
  const form = h('form', { role: 'search', class: 'filters', 'aria-label': 'Filter the audit log' },
    field('About user (email, username or id)', userInput),
    field('Action', actionSelect),
    h('button', { type: 'submit' }, 'Filter')
  )
  form.addEventListener('submit', event => {
    event.preventDefault()
    navigate(hashOf('/audit', { user: userInput.value.trim(), action: actionSelect.value }))
  })

  const heading = h('h1', { tabindex: '-1' }, 'Audit log')
  if (subjectId === null) {
    return { title: 'Audit log', element: h('section', {}, heading, form, h('p', { role: 'alert' }, 'No user has the email address or username typed above.')) }
  }
  if (subjectId !== undefined) query.subjectId = subjectId
  const page = await api.audit(query)
  // The service gives each entry its users' addresses as they are now: null once a user is gone.
  const who = (id: string | null, email: string | null | undefined) => {
    if (id === null) return '—'
    if (email === null) return h('span', { title: id }, `${id.slice(0, 8)}… (deleted)`)
    // An instance of an older release, during a rolling upgrade, gives the ids only.
    if (email === undefined) return h('a', { href: `#/users/${id}`, title: id }, `${id.slice(0, 8)}…`)
    return h('a', { href: `#/users/${id}`, title: id }, email)
  }
  const rows = page.items.map(entry => [
    h('time', { datetime: entry.createdAt }, dateTime(entry.createdAt)),
    entry.action,
    who(entry.actorId, entry.actorEmail),
    who(entry.subjectId, entry.subjectEmail),
    entry.ip ?? '—',
    h('code', {}, details(entry.details))
  ])
  const list = `${typedUser}|${action}`
  const go = (next: string | undefined) => navigate(hashOf('/audit', { user: typedUser, action, cursor: next }))
  return {
    title: 'Audit log',
    element: h('section', {},
      heading,
      form,
      rows.length === 0 ? h('p', { role: 'status' }, 'No entry matches.') : table('Audit entries, newest first', ['When', 'Action', 'By', 'About', 'IP address', 'Details'], rows),
      h('div', { class: 'pager' }, pager(`audit ${list}`, cursor, page.nextCursor, go))
    )
  }
}
