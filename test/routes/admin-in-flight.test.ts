// An admin's change checks its caller again as it commits: an admin removed while the request was under way (its body held back, or sent in the same moment) changes nothing.
import { randomUUID } from 'node:crypto'
import { PassThrough } from 'node:stream'
import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { loginAsAdmin } from '../helpers/admin.js'
import { whileHeld } from '../helpers/locks.js'
import { registerAccount, registerProvenAccount } from '../helpers/users.js'

const { app, prisma, pool, database, clock } = await buildTestApp(t)
type Admin = Awaited<ReturnType<typeof loginAsAdmin>>

/**
 * Sends the request's headers now and its body only once `meanwhile` is done, as a client that
 * holds the body back does: the route's guards run on the headers alone.
 */
async function withBodyHeldBack (request: { method: 'PATCH' | 'PUT' | 'DELETE' | 'POST', url: string, headers: Record<string, string>, body?: unknown }, meanwhile: () => Promise<void>): Promise<LightMyRequestResponse> {
  const body = new PassThrough()
  // A body of its own even where the route takes none (`{}`): without one, nothing is waited for.
  const answer = app.inject({ method: request.method, url: request.url, headers: { ...request.headers, 'content-type': 'application/json' }, payload: body })
  await meanwhile()
  body.end(JSON.stringify(request.body ?? {}))
  return await answer
}

const removals: Array<{ how: string, status: number, code: string, remove: (by: Admin, rogue: Admin) => Promise<void> }> = [
  { how: 'deactivated', status: 401, code: 'AUTH_SESSION_REVOKED', remove: async (by, rogue) => { await app.inject({ method: 'PATCH', url: `/admin/users/${rogue.user.id}`, headers: by.headers, payload: { isActive: false } }) } },
  { how: 'demoted', status: 403, code: 'FORBIDDEN', remove: async (by, rogue) => { await app.inject({ method: 'PATCH', url: `/admin/users/${rogue.user.id}`, headers: by.headers, payload: { role: 'user' } }) } },
  { how: 'signed out by another admin', status: 401, code: 'AUTH_SESSION_REVOKED', remove: async (by, rogue) => { await app.inject({ method: 'POST', url: `/admin/users/${rogue.user.id}/sessions/revoke`, headers: by.headers }) } },
  { how: 'deleted', status: 401, code: 'AUTH_SESSION_REVOKED', remove: async (by, rogue) => { await app.inject({ method: 'DELETE', url: `/admin/users/${rogue.user.id}`, headers: by.headers }) } }
]

t.test('an admin removed while their request is under way changes nothing, whatever the change', async t => {
  for (const { how, status, code, remove } of removals) {
    const guardian = await loginAsAdmin(app, prisma)
    const rogue = await loginAsAdmin(app, prisma)
    const accomplice = await registerProvenAccount(app, prisma)
    const victim = await loginAsAdmin(app, prisma)
    const inactive = await registerAccount(app)
    await prisma.user.update({ where: { id: inactive.user.id }, data: { isActive: false } })
    const changes = [
      { what: 'a promotion', method: 'PATCH' as const, url: `/admin/users/${accomplice.user.id}`, body: { role: 'admin' } },
      { what: 'longer token lifetimes', method: 'PUT' as const, url: '/admin/settings', body: { accessTokenTtlSeconds: 86_400 } },
      { what: 'a deletion', method: 'DELETE' as const, url: `/admin/users/${guardian.user.id}` },
      { what: 'a sign-out', method: 'POST' as const, url: `/admin/users/${victim.user.id}/sessions/revoke` },
      { what: 'the removal of the factors', method: 'DELETE' as const, url: `/admin/users/${victim.user.id}/mfa` },
      { what: 'a reset mail', method: 'POST' as const, url: `/admin/users/${victim.user.id}/password-reset` },
      // Nothing about the target is told before the caller is confirmed (regression: 404, 409 USER_INACTIVE).
      { what: 'a sign-out of nobody', method: 'POST' as const, url: `/admin/users/${randomUUID()}/sessions/revoke` },
      { what: 'a reset mail to a deactivated user', method: 'POST' as const, url: `/admin/users/${inactive.user.id}/password-reset` }
    ]
    const held = changes.map(change => {
      let release = () => {}
      const released = new Promise<void>(resolve => { release = resolve })
      return { ...change, release, answer: withBodyHeldBack({ ...change, headers: rogue.headers }, async () => { await released }) }
    })
    await new Promise(resolve => setTimeout(resolve, 150))
    await remove(guardian, rogue)
    for (const change of held) change.release()
    for (const change of held) {
      const answer = await change.answer
      t.equal(answer.statusCode, status, `${how}, ${change.what}: ${answer.body}`)
      t.equal(answer.json().code, code)
    }
    t.equal((await prisma.user.findUniqueOrThrow({ where: { id: accomplice.user.id } })).role, 'user', `${how}: nobody promoted`)
    t.equal(await prisma.user.count({ where: { id: guardian.user.id } }), 1, `${how}: nobody deleted`)
    t.equal(await prisma.session.count({ where: { userId: victim.user.id, revokedAt: null } }), 1, `${how}: nobody signed out`)
    t.equal((await app.inject({ method: 'GET', url: '/admin/settings', headers: guardian.headers })).json().accessTokenTtlSeconds, 900, `${how}: the lifetimes as they were`)
    t.equal(await prisma.outboxMail.count({ where: { kind: 'password_reset' } }), 0, `${how}: no reset mail`)
    t.equal(await prisma.auditEvent.count({ where: { actorId: rogue.user.id, action: { notIn: ['user.registered', 'login.succeeded'] } } }), 0, `${how}: nothing done in the rogue's name`)
  }
})

t.test('an admin still an admin as the held body arrives is served', async t => {
  const admin = await loginAsAdmin(app, prisma)
  const user = await registerAccount(app)
  const answer = await withBodyHeldBack({ method: 'PATCH', url: `/admin/users/${user.user.id}`, headers: admin.headers, body: { profile: { displayName: 'Held Back' } } }, async () => {})
  t.equal(answer.statusCode, 200, answer.body)
  t.equal(answer.json().profile.displayName, 'Held Back')
})

t.test('two admins acting on each other at once take turns: no deadlock, and the one second to commit is refused', async t => {
  for (let round = 0; round < 5; round++) {
    const [a, b] = [await loginAsAdmin(app, prisma), await loginAsAdmin(app, prisma)]
    // Keeps the last-admin rule out of the way.
    await loginAsAdmin(app, prisma)
    const [first, second] = await Promise.all([
      app.inject({ method: 'POST', url: `/admin/users/${b.user.id}/sessions/revoke`, headers: a.headers }),
      app.inject({ method: 'PATCH', url: `/admin/users/${a.user.id}`, headers: b.headers, payload: { role: 'user' } })
    ])
    const statuses = [first.statusCode, second.statusCode].sort()
    // The demotion first: the sign-out is FORBIDDEN; the sign-out first: the demotion's session has ended.
    t.ok(['200,403', '204,401'].includes(statuses.join()), `round ${round}: one wins, the other is refused (${statuses.join(', ')})`)
  }
})

t.test('a deletion audits, and frees the failure counts of, the address the user has as it commits', {
  skip: database.poolSize === 1 && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
}, async t => {
  const admin = await loginAsAdmin(app, prisma)
  const user = await registerAccount(app)
  const changed = `changed-${user.email}`
  // An address change confirmed while the deletion waits for the user's row.
  const response = await whileHeld(database.url, pool, {
    hold: async holder => await holder.query('UPDATE "User" SET email = $2 WHERE id = $1', [user.user.id, changed]),
    waitingStatement: '%FROM "User" WHERE id = %FOR UPDATE%'
  }, async () => await app.inject({ method: 'DELETE', url: `/admin/users/${user.user.id}`, headers: admin.headers }))
  t.equal(response.statusCode, 204)
  const entry = await prisma.auditEvent.findFirstOrThrow({ where: { action: 'user.deleted', subjectId: user.user.id } })
  t.same(entry.details, { email: changed }, 'the address it had as it was deleted')
})

t.test('an admin change held back past REAUTH_MAX_AGE_SECONDS is refused as a stale one is', async t => {
  const admin = await loginAsAdmin(app, prisma)
  const user = await registerAccount(app)
  const answer = await withBodyHeldBack({ method: 'PATCH', url: `/admin/users/${user.user.id}`, headers: admin.headers, body: { role: 'admin' } }, async () => { clock.advance(3600) })
  t.equal(answer.statusCode, 403, answer.body)
  t.equal(answer.json().code, 'REAUTHENTICATION_REQUIRED')
  t.equal((await prisma.user.findUniqueOrThrow({ where: { id: user.user.id } })).role, 'user')
})

t.test('the caller\'s logout waits for a change of theirs already confirmed, and an unrelated change of another admin does not', {
  skip: database.poolSize === 1 && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
}, async t => {
  const [first, second] = [await loginAsAdmin(app, prisma), await loginAsAdmin(app, prisma)]
  const [target, other] = [await registerAccount(app), await registerAccount(app)]
  let logout: Promise<{ statusCode: number }> | undefined
  let loggedOut = false
  const change = await whileHeld(database.url, pool, {
    // Holds the target's profile: the change is confirmed, and waits for it.
    hold: async holder => await holder.query('SELECT 1 FROM "Profile" WHERE "userId" = $1 FOR UPDATE', [target.user.id]),
    waitingStatement: '%"Profile"%',
    meanwhile: async () => {
      const unrelated = await app.inject({ method: 'POST', url: `/admin/users/${other.user.id}/sessions/revoke`, headers: second.headers })
      t.equal(unrelated.statusCode, 204, 'another admin\'s change goes ahead meanwhile (regression: every admin change waited for every other)')
      logout = app.inject({ method: 'POST', url: '/auth/logout', payload: { refreshToken: first.refreshToken } }).finally(() => { loggedOut = true })
      await new Promise(resolve => setTimeout(resolve, 300))
      t.notOk(loggedOut, 'the logout waits (regression: it ended the session, and the change committed after)')
    }
  }, async () => await app.inject({ method: 'PATCH', url: `/admin/users/${target.user.id}`, headers: first.headers, payload: { profile: { displayName: 'Changed' } } }))
  t.equal(change.statusCode, 200, 'the change commits first')
  t.equal((await logout!).statusCode, 204, 'then the logout')
})
