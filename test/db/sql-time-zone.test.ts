// The hand-written hot-path statements (src/db/sql.ts) read and write timestamps as Prisma does (UTC), whatever the process's time zone.
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { loginWithBody, registerAccount } from '../helpers/users.js'

// Far from UTC, so that a timestamp read as local time would be off by hours.
const previousZone = process.env.TZ
process.env.TZ = 'Pacific/Kiritimati'
t.teardown(() => {
  if (previousZone === undefined) delete process.env.TZ
  else process.env.TZ = previousZone
})

const { app, prisma } = await buildTestApp(t)
const account = await registerAccount(app)

t.test('login, /users/me and refresh agree with Prisma on every timestamp', async t => {
  const tokens = await loginWithBody(app, account)
  const me = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${tokens.accessToken}` } })
  t.equal(me.statusCode, 200)
  const user = await prisma.user.findUniqueOrThrow({ where: { id: account.user.id } })
  t.equal(me.json().createdAt, user.createdAt.toISOString())
  t.equal(me.json().updatedAt, user.updatedAt.toISOString())

  const sid = JSON.parse(Buffer.from(tokens.accessToken.split('.')[1] ?? '', 'base64url').toString()).sid as string
  const opened = await prisma.session.findUniqueOrThrow({ where: { id: sid } })
  t.ok(Math.abs(opened.createdAt.getTime() - Date.now()) < 60_000, 'the session was written in UTC')

  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: tokens.refreshToken } })
  t.equal(refreshed.statusCode, 200)
  const rotated = await prisma.session.findUniqueOrThrow({ where: { id: sid } })
  t.ok(rotated.rotatedAt !== null && Math.abs(rotated.rotatedAt.getTime() - Date.now()) < 60_000, 'the rotation was written in UTC')

  // The grace window is measured from the rotation time as read back: misread by hours, this
  // honest retry would count as reuse and end the session.
  const retried = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: tokens.refreshToken } })
  t.equal(retried.statusCode, 200)
  t.equal(retried.json().refreshToken, refreshed.json().refreshToken)
})
