// "Has a second factor" is decided in three places: the login's lookup (SQL, the hot path), the
// admin's view of a user, and the login challenge's methods. One answer for every state of the factors.
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { loginAsAdmin } from '../helpers/admin.js'
import { enrolTotp, startEnrolment, startLogin } from '../helpers/mfa.js'
import { registerPasskey } from '../helpers/passkeys.js'
import { loginWithBody, registerProvenAccount } from '../helpers/users.js'

const { app, prisma, clock } = await buildTestApp(t)
const admin = await loginAsAdmin(app, prisma)

const states: Array<{ name: string, factors: boolean, set: (headers: Record<string, string>, password: string) => Promise<unknown> }> = [
  { name: 'no factor', factors: false, set: async () => {} },
  { name: 'a TOTP enrolment not confirmed', factors: false, set: async (headers, password) => await startEnrolment(app, headers, password) },
  { name: 'a confirmed TOTP factor', factors: true, set: async (headers, password) => await enrolTotp(app, headers, clock, password) },
  { name: 'a passkey alone', factors: true, set: async (headers, password) => await registerPasskey(app, headers, password) },
  {
    name: 'a TOTP factor removed',
    factors: false,
    set: async (headers, password) => {
      await enrolTotp(app, headers, clock, password)
      const removed = await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers })
      if (removed.statusCode !== 204) throw new Error(`remove failed: ${removed.statusCode} ${removed.body}`)
    }
  }
]

for (const state of states) {
  t.test(`${state.name}: ${state.factors ? 'a second factor' : 'none'}, whoever asks`, async t => {
    const account = await registerProvenAccount(app, prisma)
    const { accessToken } = await loginWithBody(app, account)
    await state.set({ authorization: `Bearer ${accessToken}` }, account.password)

    const login = (await startLogin(app, account)).json()
    t.equal(login.mfaRequired === true, state.factors, 'the login asks for it')
    if (state.factors) t.ok(login.methods.length > 0, `with the methods it allows: ${String(login.methods)}`)
    const view = await app.inject({ method: 'GET', url: `/admin/users/${account.user.id}`, headers: admin.headers })
    t.equal(view.json().mfaEnabled, state.factors, "the admin's view says so")
    const list = await app.inject({ method: 'GET', url: `/admin/users?q=${encodeURIComponent(account.email)}&match=exact`, headers: admin.headers })
    t.equal(list.json().items[0]?.mfaEnabled, state.factors, "and the admin's list")
  })
}
