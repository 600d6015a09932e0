// Rate-limit bypass attempts over real HTTP: spoofed forwarding headers count only from a trusted proxy.
import t, { type Test } from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { listen } from '../helpers/http.js'

const spoofed = (i: number) => ({
  'x-forwarded-for': `203.0.113.${i}`,
  'x-real-ip': `198.51.100.${i}`,
  forwarded: `for=192.0.2.${i}`,
  'cf-connecting-ip': `192.0.2.${i}`,
  'true-client-ip': `192.0.2.${i}`
})

async function statuses (env: Record<string, string>, t: Test) {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_LOGIN_IP: '3/60', ...env } })
  const http = await listen(app)
  const result = []
  for (let i = 1; i <= 5; i++) {
    result.push((await http.request('/auth/login', { headers: spoofed(i), body: { email: `spoof-${i}@example.com`, password: 'wrong password' } })).status)
  }
  return result
}

t.test('with no trusted proxy, rotating X-Forwarded-For (or any look-alike) changes nothing', async t => {
  t.same(await statuses({}, t), [401, 401, 401, 429, 429])
})

t.test('a proxy list that does not include the caller is not fooled either', async t => {
  t.same(await statuses({ TRUST_PROXY: '10.0.0.1,192.168.0.0/16' }, t), [401, 401, 401, 429, 429])
})

t.test('behind a trusted proxy, the forwarded client address is the key (what TRUST_PROXY is for)', async t => {
  t.same(await statuses({ TRUST_PROXY: '127.0.0.1' }, t), [401, 401, 401, 401, 401])
})
