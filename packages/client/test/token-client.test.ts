// Token mode against a stand-in of the service, for what the service cannot answer yet (the second factor) or never should.
import t from 'tap'
import { createTokenClient, memoryStorage, type Fetch } from '../src/index.js'
import { errorAnswer, user } from './helpers/stand-in.js'

const baseUrl = 'https://auth.example.com/'
const tokens = { accessToken: 'access-1', refreshToken: 'refresh-1', tokenType: 'Bearer', expiresIn: 900 }

t.test('a second factor: no token kept until /auth/mfa/verify answers with them', async t => {
  const sent: Array<{ url: string, body: unknown }> = []
  const fetch: Fetch = async (url, init) => {
    const body = JSON.parse(String(init.body)) as Record<string, string>
    sent.push({ url, body })
    if (url.endsWith('/auth/login')) return Response.json({ mfaRequired: true, mfaToken: 'mfa-opaque', methods: ['totp'], expiresIn: 300 })
    if (body.recoveryCode === 'abcd-efgh') return Response.json({ ...tokens, user })
    return errorAnswer(401, 'MFA_CODE_INVALID')
  }
  const storage = memoryStorage()
  const client = createTokenClient({ baseUrl, fetch, storage })
  const result = await client.login({ username: 'ada', password: 'pw' })
  t.match(result, { mfaRequired: true, mfaToken: 'mfa-opaque', methods: ['totp'] })
  t.equal(storage.get(), null, 'nothing kept yet')
  await t.rejects(client.verifyMfa({ mfaToken: 'mfa-opaque', code: '000000' }), { code: 'MFA_CODE_INVALID' })
  t.same(await client.verifyMfa({ mfaToken: 'mfa-opaque', recoveryCode: 'abcd-efgh' }), { mfaRequired: false, user, expiresIn: 900 })
  t.match(storage.get(), { accessToken: 'access-1', refreshToken: 'refresh-1', expiresIn: 900 })
  const urls = ['https://auth.example.com/auth/login', 'https://auth.example.com/auth/mfa/verify', 'https://auth.example.com/auth/mfa/verify']
  t.same(sent.map(s => s.url), urls, 'the trailing slash of baseUrl dropped')
  t.same(sent[0]?.body, { username: 'ada', password: 'pw' }, 'no transport asked: tokens in the body')
})

t.test('an answer with cookies instead of tokens (a browser) is refused, and nothing is kept', async t => {
  const client = createTokenClient({ baseUrl, fetch: async () => Response.json({ user, expiresIn: 900 }) })
  await t.rejects(client.login({ email: user.email, password: 'pw' }), { code: 'UNEXPECTED_RESPONSE', message: /createAuthClient/ })
  await t.rejects(client.me(), { code: 'AUTH_REQUIRED', status: 401 }, 'not signed in')
})
