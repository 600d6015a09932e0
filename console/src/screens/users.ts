// Users: search by email or username, filter by role and state, a page at a time.
import type { UserQuery } from '../api.js'
import { hashOf, pager, type Context, type Screen } from '../context.js'
import { field, h, option, table } from '../dom.js'
import { dateTime, visible } from '../format.js'
import { roles, type Role } from '../../../src/services/accounts/roles.js'

const PAGE_SIZE = 20

export async function usersScreen ({ api, params, navigate }: Context): Promise<Screen> {
  // A value the form does not offer is no filter at all: the list and the form always agree
  // (regression: a link's `active=maybe` listed the deactivated while the form said any).
  const offered = (value: string | null, values: string[]) => value !== null && values.includes(value) ? value : ''
  const filters = { q: params.get('q') ?? '', role: offered(params.get('role'), roles), active: offered(params.get('active'), ['true', 'false']) }
  const cursor = params.get('cursor') ?? undefined
  const query: UserQuery = { limit: PAGE_SIZE }
  if (filters.q !== '') query.q = filters.q
  if (filters.role !== '') query.role = filters.role as Role
  if (filters.active !== '') query.active = filters.active === 'true'
  if (cursor !== undefined) query.cursor = cursor
  const page = await api.users(query)

  const q = h('input', { type: 'search', name: 'q', value: filters.q, maxlength: '254' })
  const role = h('select', { name: 'role' }, option('', 'Any role', filters.role === ''), roles.map(name => option(name, name, filters.role === name)))
  const active = h('select', { name: 'active' }, option('', 'Active or not', filters.active === ''), option('true', 'Active', filters.active === 'true'), option('false', 'Deactivated', filters.active === 'false'))
  const form = h('form', { role: 'search', class: 'filters', 'aria-label': 'Find users' },
    field('Email or username starts with', q),
    field('Role', role),
    field('Status', active),
    h('button', { type: 'submit' }, 'Search')
  )
  form.addEventListener('submit', event => {
    event.preventDefault()
    navigate(hashOf('/users', { q: q.value.trim(), role: role.value, active: active.value }))
  })

  const rows = page.items.map(user => [
    h('a', { href: `#/users/${user.id}` }, user.email),
    user.username === null ? '—' : visible(user.username),
    user.role,
    user.isActive ? 'Active' : 'Deactivated',
    dateTime(user.createdAt)
  ])
  const list = `${filters.q}|${filters.role}|${filters.active}`
  const go = (next: string | undefined) => navigate(hashOf('/users', { ...filters, cursor: next }))
  const found = rows.length === 1 ? '1 user' : `${rows.length} users`
  return {
    title: 'Users',
    status: rows.length === 0 ? 'No user matches.' : page.nextCursor === null ? found : `${found} on this page, more on the next`,
    element: h('section', {},
      h('h1', { tabindex: '-1' }, 'Users'),
      form,
      rows.length === 0 ? h('p', {}, 'No user matches.') : table('Users, newest first', ['Email', 'Username', 'Role', 'Status', 'Created'], rows),
      h('div', { class: 'pager' }, pager(`users ${list}`, cursor, page.nextCursor, go))
    )
  }
}
