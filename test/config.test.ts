// Start-up configuration: defaults, one clear line per bad variable, and production refusals.
import t from 'tap'
import { ConfigError, loadConfig, loadDatabaseConfig } from '../src/config.js'
import { mailSettingsOf, rateLimitsOf, rateOf } from '../src/config-derived.js'
import { webauthnSettingsOf } from '../src/config-webauthn.js'
import { TEST_SECRET } from './helpers/app.js'

const strongSecret = 'q8Z2v7XkLm4Pw9RtYb3Nc6Hs1Jd5Fg0AeUoIyTr'
/** What a production start needs at the least. */
const production = { NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', DATABASE_URL: 'postgresql://db/auth', AUTH_SECRET: strongSecret, SMTP_URL: 'smtp://mail.internal:587' }

function problemsOf (env: Record<string, string>): string[] {
  try {
    loadConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

t.test('defaults need no configuration at all', async t => {
  const config = loadConfig({})
  t.match(config, {
    NODE_ENV: 'development',
    PORT: 3000,
    HOST: '127.0.0.1',
    ACCESS_TOKEN_TTL_SECONDS: 900,
    REFRESH_TOKEN_IDLE_TTL_SECONDS: 604_800,
    SESSION_ABSOLUTE_TTL_SECONDS: 2_592_000,
    REFRESH_REUSE_GRACE_SECONDS: 10,
    MAX_SESSIONS_PER_USER: 10,
    COOKIE_SECURE: true,
    COOKIE_SAMESITE: 'lax',
    ARGON2_MEMORY_KIB: 19_456,
    ARGON2_TIME_COST: 2,
    ARGON2_PARALLELISM: 1,
    MIGRATE_ON_START: true,
    PASSWORD_RESET_TTL_SECONDS: 1800,
    EMAIL_VERIFICATION_TTL_SECONDS: 86_400,
    REQUIRE_EMAIL_VERIFICATION: false
  })
  t.equal(config.DATABASE_URL, undefined)
  t.equal(config.SMTP_URL, undefined, 'no SMTP: mails go to the log')
})

t.test('values are converted from strings; empty means unset', async t => {
  const config = loadConfig({ PORT: '8080', COOKIE_SECURE: 'false', DATABASE_URL: '', MIGRATE_ON_START: 'false' })
  t.equal(config.PORT, 8080)
  t.equal(config.COOKIE_SECURE, false)
  t.equal(config.MIGRATE_ON_START, false)
  t.equal(config.DATABASE_URL, undefined)
})

t.test('every bad variable is reported at once, one line each, naming it', async t => {
  const problems = problemsOf({ PORT: 'eighty', ACCESS_TOKEN_TTL_SECONDS: '1', COOKIE_SAMESITE: 'sometimes', DATABASE_URL: 'mysql://x', AUTH_SECRET: 'short' })
  t.equal(problems.length, 5, problems.join('\n'))
  for (const name of ['PORT', 'ACCESS_TOKEN_TTL_SECONDS', 'COOKIE_SAMESITE', 'DATABASE_URL', 'AUTH_SECRET']) {
    t.ok(problems.some(p => p.startsWith(`${name}: `)), name)
  }
  t.ok(problems.some(p => p.includes('"eighty"')), 'the bad value is shown')
  t.notOk(problems.some(p => p.includes('short')), 'a secret is never echoed')
  const urls = problemsOf({ DATABASE_URL: 'mysql://root:hunter2@db/auth', PASSWORD_MIN_LENGTH: '3' })
  t.notOk(urls.some(p => p.includes('hunter2')), 'nor a URL that may hold a password')
  t.ok(urls.some(p => p.startsWith('PASSWORD_MIN_LENGTH') && p.includes('"3"')), 'ordinary values are shown')
})

t.test('each bad value is one line that states the rule', async t => {
  // Regression: read as 5, 10 and 16, in range, so accepted; "1e3" was refused as "greater or equal to 5".
  for (const written of ['5e3', '1e3', '10.5', '0x10', '6 0', '-5']) {
    t.same(problemsOf({ ACCESS_TOKEN_TTL_SECONDS: written }), [`ACCESS_TOKEN_TTL_SECONDS: must be a whole number from 5 to 86400 (access token lifetime), got ${JSON.stringify(written)}`], written)
  }
  t.same(problemsOf({ ACCESS_TOKEN_TTL_SECONDS: '200000' }), ['ACCESS_TOKEN_TTL_SECONDS: must be a whole number from 5 to 86400 (access token lifetime), got "200000"'])
  t.equal(loadConfig({ ACCESS_TOKEN_TTL_SECONDS: '0900' }).ACCESS_TOKEN_TTL_SECONDS, 900, 'digits, leading zeros or not')
  t.equal(loadConfig({ ACCESS_TOKEN_TTL_SECONDS: ' 900 ' }).ACCESS_TOKEN_TTL_SECONDS, 900, 'an env file\'s stray spaces around them too')
  t.same(problemsOf({ LOG_LEVEL: 'verbose' }), ['LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"'])
  t.match(problemsOf({ COOKIE_SECURE: 'yes' }), [/^COOKIE_SECURE: must be true or false/])
})

t.test('settings that contradict each other', async t => {
  t.match(problemsOf({ REFRESH_TOKEN_IDLE_TTL_SECONDS: '86400', SESSION_ABSOLUTE_TTL_SECONDS: '3600' }), [/^SESSION_ABSOLUTE_TTL_SECONDS/])
  t.same(problemsOf({ ACCESS_TOKEN_TTL_SECONDS: '301', REFRESH_TOKEN_IDLE_TTL_SECONDS: '600' }), ['ACCESS_TOKEN_TTL_SECONDS: must be at most half the idle lifetime (REFRESH_TOKEN_IDLE_TTL_SECONDS)'], 'a token that expires past half the idle limit')
  t.same(problemsOf({ ACCESS_TOKEN_TTL_SECONDS: '300', REFRESH_TOKEN_IDLE_TTL_SECONDS: '600' }), [], 'half is fine')
  t.match(problemsOf({ COOKIE_SAMESITE: 'none', COOKIE_SECURE: 'false' }), [/^COOKIE_SAMESITE/])
  t.match(problemsOf({ CORS_ORIGINS: 'https://app.example.com,https://app.example.com/path' }), [/^CORS_ORIGINS: "https:\/\/app.example.com\/path"/])
  t.match(problemsOf({ PUBLIC_URL: 'https://auth.example.com/v1' }), [/^PUBLIC_URL/])
  // Compared with the Origin browsers send (regression: accepted, then every write of the service's own pages was 403).
  t.same(problemsOf({ PUBLIC_URL: 'https://Auth.Example.com:443' }), ['PUBLIC_URL: "https://Auth.Example.com:443" is not written as browsers send its origin; write https://auth.example.com'])
  t.match(problemsOf({ PUBLIC_URL: 'http://auth.example.com:80' }), [/^PUBLIC_URL: .* write http:\/\/auth.example.com$/])
  // Regression: a slash or a path failed the pattern first, whose message named no spelling.
  t.same(problemsOf({ PUBLIC_URL: 'https://auth.example.com/' }), ['PUBLIC_URL: "https://auth.example.com/" is not written as browsers send its origin; write https://auth.example.com'])
  t.match(problemsOf({ PUBLIC_URL: 'https://Auth.Example.com/auth' }), [/write https:\/\/auth.example.com$/])
  // Regression: a TypeError and its stack, from the checks that read it as a URL.
  t.same(problemsOf({ PUBLIC_URL: 'https://auth example.com' }), ['PUBLIC_URL: "https://auth example.com" is not a URL; write the service\'s origin, like https://auth.example.com'])
  // ... and alone: the other problems are still reported (regression: it hid them).
  t.match(problemsOf({ PUBLIC_URL: 'https://auth example.com', COOKIE_SAMESITE: 'none', COOKIE_SECURE: 'false' }), [/^COOKIE_SAMESITE/, /^PUBLIC_URL: .* is not a URL/])
  t.match(problemsOf({ PUBLIC_URL: 'HTTPS://Auth.Example.com' }), [/write https:\/\/auth.example.com$/], 'an upper-case scheme is named too')
  t.equal(loadConfig({ HOST: 'Auth.Internal', PORT: '80' }).PUBLIC_URL, 'http://auth.internal', 'the default is written as browsers write it')
  t.match(problemsOf({ PORT: '8080', METRICS_PORT: '8080' }), [/^METRICS_PORT: must differ from PORT/])
  // The drain is part of the shutdown's time: as long, it would leave the requests in flight none.
  t.match(problemsOf({ SHUTDOWN_DRAIN_SECONDS: '10', SHUTDOWN_TIMEOUT_SECONDS: '10' }), [/^SHUTDOWN_DRAIN_SECONDS: must be less than SHUTDOWN_TIMEOUT_SECONDS/])
  t.same(problemsOf({ SHUTDOWN_DRAIN_SECONDS: '0', SHUTDOWN_TIMEOUT_SECONDS: '1' }), [])
  // Regression: an account used after its sessions and links were deleted, or whose first link still worked, was taken for abandoned.
  t.match(problemsOf({ UNVERIFIED_ACCOUNT_RETENTION_DAYS: '60', SESSION_RETENTION_DAYS: '30' }), [/^UNVERIFIED_ACCOUNT_RETENTION_DAYS: must be 0, or at most SESSION_RETENTION_DAYS/])
  t.match(problemsOf({ UNVERIFIED_ACCOUNT_RETENTION_DAYS: '1', EMAIL_VERIFICATION_TTL_SECONDS: '86400' }), [/^UNVERIFIED_ACCOUNT_RETENTION_DAYS/])
  t.same(problemsOf({ UNVERIFIED_ACCOUNT_RETENTION_DAYS: '30', SESSION_RETENTION_DAYS: '30', EMAIL_VERIFICATION_TTL_SECONDS: '604800' }), [])
  t.match(problemsOf({ PASSWORD_MIN_LENGTH: '20', ADMIN_PASSWORD: 'nine char' }), [/^ADMIN_PASSWORD: must be PASSWORD_MIN_LENGTH to PASSWORD_MAX_LENGTH/])
  t.match(problemsOf({ PASSWORD_MAX_LENGTH: '64', ADMIN_PASSWORD: 'x'.repeat(65) }), [/^ADMIN_PASSWORD/])
  t.same(problemsOf({ PASSWORD_MIN_LENGTH: '12', ADMIN_PASSWORD: 'twelve chars' }), [])
  // Ten code points as typed, five once normalised: refused here, not at start-up's registration (regression: a fatal start).
  t.match(problemsOf({ PASSWORD_MIN_LENGTH: '8', ADMIN_PASSWORD: 'e\u0301'.repeat(5) }), [/^ADMIN_PASSWORD: must be PASSWORD_MIN_LENGTH/])
  // 80 code points as typed, 40 once normalised: within a maximum of 64, as the API counts it.
  t.same(problemsOf({ PASSWORD_MAX_LENGTH: '64', ADMIN_PASSWORD: 'e\u0301'.repeat(40) }), [])
  // Node refuses to create a server whose headers timeout passes its request timeout.
  t.same(problemsOf({ HEADERS_TIMEOUT_SECONDS: '20', REQUEST_TIMEOUT_SECONDS: '15' }), ['HEADERS_TIMEOUT_SECONDS: must be at most REQUEST_TIMEOUT_SECONDS'])
  t.same(problemsOf({ HEADERS_TIMEOUT_SECONDS: '15', REQUEST_TIMEOUT_SECONDS: '15' }), [])
})

t.test('AUTH_SECRET_PREVIOUS: only beside AUTH_SECRET and different from it, and never echoed', async t => {
  const previous = 'the-previous-root-secret-0123456789-abcdefghij'
  t.match(problemsOf({ AUTH_SECRET_PREVIOUS: previous }), [/^AUTH_SECRET_PREVIOUS: only beside AUTH_SECRET/])
  t.match(problemsOf({ AUTH_SECRET: previous, AUTH_SECRET_PREVIOUS: previous }), [/^AUTH_SECRET_PREVIOUS: the same as AUTH_SECRET/])
  const short = problemsOf({ AUTH_SECRET: strongSecret, AUTH_SECRET_PREVIOUS: 'old-and-short' })
  t.match(short, [/^AUTH_SECRET_PREVIOUS: .*\(hidden\)$/])
  t.notOk(short.some(p => p.includes('old-and-short')), 'never echoed')
  t.same(problemsOf({ AUTH_SECRET: strongSecret, AUTH_SECRET_PREVIOUS: previous }), [])
})

// Regression: a value of 100 KB, a pasted file, held the start for seconds while its repetitions were looked for.
t.test('a secret longer than 1 024 characters is refused, never echoed', async t => {
  const long = 'x'.repeat(20_000)
  t.match(problemsOf({ AUTH_SECRET: long, METRICS_TOKEN: long }), [/^AUTH_SECRET: .*\(hidden\)$/, /^METRICS_TOKEN: .*\(hidden\)$/])
})

t.test('metrics settings: the token is a secret', async t => {
  const short = problemsOf({ METRICS_TOKEN: 'tiny-token' })
  t.match(short, [/^METRICS_TOKEN: .*\(hidden\)$/])
  t.notOk(short.some(p => p.includes('tiny-token')), 'never echoed')
  t.match(problemsOf({ ...production, METRICS_TOKEN: 'change-me-change-me' }), [/^METRICS_TOKEN: looks like a placeholder/])
  t.same(problemsOf({ ...production, METRICS_TOKEN: 'Zq3v8XkLm4Pw9RtYb3Nc6H' }), [])
})

t.test('production refuses development defaults and weak secrets', async t => {
  const problems = problemsOf({ NODE_ENV: 'production' })
  t.ok(problems.some(p => p.startsWith('AUTH_SECRET: required')))
  t.ok(problems.some(p => p.startsWith('DATABASE_URL: required')))
  t.ok(problems.some(p => p.startsWith('SMTP_URL: required')))
  t.same(problemsOf(production), [])
  t.match(problemsOf({ ...production, AUTH_SECRET: 'change-me-change-me-change-me-change-me' }), [/^AUTH_SECRET: looks like a placeholder/])
  t.match(problemsOf({ ...production, AUTH_SECRET: 'a'.repeat(64) }), [/^AUTH_SECRET/])
  // Regression: runs along the alphabet, the digits or a keyboard row, and the test suite's own secret, passed.
  // And: keyboard columns and zigzags, a short value repeated, a
  // placeholder in leetspeak, in base64.
  for (const guessable of [
    'abcdefghijklmnopqrstuvwxyz012345', '0123456789abcdef0123456789abcdef', 'qwertyuiopasdfghjklzxcvbnm123456', 'ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210', TEST_SECRET,
    '1q2w3e4r5t6y7u8i9o0p1q2w3e4r5t6y', 'zaq12wsxcde34rfvbgt56yhnmju78ik,', 'auth-service-auth-service-auth-s', 'Tr0ub4dor&3Tr0ub4dor&3Tr0ub4dor&3',
    'P@ssw0rd123456789P@ssw0rd12345678', Buffer.from('changemechangemechangemechangeme').toString('base64'), Buffer.from('example-auth-secret-for-tests').toString('base64'),
    // And (the next one): `echo`'s newline in base64 or hex, Shift held, the numpad, a value repeated but for its end, a 1 for an l.
    Buffer.from('changemechangemechangemechangeme\n').toString('base64'), Buffer.from('qwertyuiopasdfghjklzxcvbnm\n').toString('hex'),
    '!QAZ@WSX#EDC$RFV%TGB^YHN&UJM*IK<', '!@#$%^&*()_+{}|:"<>?~!@#$%^&*()_+{}', '789456123789456123/*-+789456123789', 'Summer2026!Summer2026!Summer2026!x', 'examp1e-examp1e-key-for-auth-9876',
    // And (the last): a repetition after a first character, line breaks in the value, a 1 read both ways.
    'xSummer2026!Summer2026!Summer2026!', 'k3y-auth-service-auth-service-auth-s', `${Buffer.from('qwertyuiopasdfghjklzxcvbnm').toString('base64')}\n`,
    Buffer.from('changeme'.repeat(8) + '\n').toString('base64').replace(/(.{76})/g, '$1\n'), 'my-1etme1n-company-auth-key-2026-prod'
  ]) {
    t.match(problemsOf({ ...production, AUTH_SECRET: guessable }), [/^AUTH_SECRET: looks like a placeholder or low-entropy value/], guessable)
  }
  for (const guessable of ['abcdefghijklmnop', 'letmeinletmein12', 'metricsmetrics12', 'prometheus-token', '1q2w3e4r5t6y7u8i', 'q1w2e3r4t5y6u7i8', Buffer.from('metrics-token\n').toString('base64'), '_Xk9qXk9qXk9qXk9q', '1etme1n-1etme1n!']) {
    t.match(problemsOf({ ...production, METRICS_TOKEN: guessable }), [/^METRICS_TOKEN: looks like a placeholder/], guessable)
  }
  // Regression: random tokens of the shortest length taken were refused (16 hex digits: one in five).
  for (const random of ['9f86d081884c7d65', 'a3bf4f1b2b0b822c', 'u0vQ7yK3pL9zX2mB', 'q2Zt9+Vb4Lw8Xy3/', '8709912798781768']) {
    t.same(problemsOf({ ...production, METRICS_TOKEN: random }), [], `random: ${random}`)
  }
  for (const random of ['u0vQ7yK3pL9zX2mB8nR5tW1cF6hJ4gD0', 'mN4rT8vX2zB6dF0hJ3lP7sW1yC5gK9qE2uI6oA8eR4tY0', '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', '87099127987817689097333107082993', 'c5a2f0de-7d1b-4e8a-9c3f-2b6e1a0d9f47']) {
    t.same(problemsOf({ ...production, AUTH_SECRET: random }), [], `random: ${random.slice(0, 8)}…`)
  }
  t.match(problemsOf({ ...production, COOKIE_SECURE: 'false' }), [/^COOKIE_SECURE/])
  t.match(problemsOf({ ...production, ARGON2_MEMORY_KIB: '4096', ARGON2_TIME_COST: '1' }), [/^ARGON2_MEMORY_KIB/, /^ARGON2_TIME_COST/])
  t.same(problemsOf({ ...production, SMTP_URL: '' }), ['SMTP_URL: required in production (without it mails are only written to the log)'])
})

t.test('mail settings: defaults from PUBLIC_URL, link templates need {token}', async t => {
  t.same(mailSettingsOf(loadConfig({ PUBLIC_URL: 'https://auth.example.com' })), {
    from: 'no-reply@auth.example.com',
    passwordResetUrl: 'https://auth.example.com/reset-password#token={token}',
    emailVerificationUrl: 'https://auth.example.com/verify-email#token={token}'
  })
  const custom = loadConfig({
    MAIL_FROM: 'Example <accounts@example.com>',
    PASSWORD_RESET_URL: 'https://app.example.com/reset#token={token}',
    EMAIL_VERIFICATION_URL: 'https://app.example.com/verify/{token}'
  })
  t.match(mailSettingsOf(custom), { from: 'Example <accounts@example.com>', passwordResetUrl: 'https://app.example.com/reset#token={token}' })
  t.match(problemsOf({ PASSWORD_RESET_URL: 'https://app.example.com/reset' }), [/^PASSWORD_RESET_URL: must be an http\(s\) URL containing \{token\}/])
  t.match(problemsOf({ EMAIL_VERIFICATION_URL: 'javascript:alert({token})' }), [/^EMAIL_VERIFICATION_URL: /])
  t.match(problemsOf({ EMAIL_VERIFICATION_URL: 'https://exa mple.com/{token}' }), [/^EMAIL_VERIFICATION_URL: must be/])
  // Regression: accepted, and every mailed link opened the service's page to "This link is incomplete".
  const own = 'https://auth.example.com'
  for (const template of [`${own}/verify-email?code={token}`, `${own}/verify-email#t={token}`, `${own}/verify-email#token=x{token}`, `${own}/verify-email?token={token}#token=abc`]) {
    t.same(problemsOf({ PUBLIC_URL: own, EMAIL_VERIFICATION_URL: template }), [
      `EMAIL_VERIFICATION_URL: leads to the service's own page /verify-email, which takes the token only as the value of "token" in the fragment or the query; write ${own}/verify-email#token={token}`
    ], template)
  }
  t.match(problemsOf({ PUBLIC_URL: own, PASSWORD_RESET_URL: `${own}/reset-password?t={token}` }), [/^PASSWORD_RESET_URL: leads to the service's own page \/reset-password/])
  // What the page reads, the check reads: the token's base64url start, from the fragment, else the query.
  for (const template of [`${own}/reset-password#token={token}`, `${own}/reset-password?lang=en&token={token}`, `${own}/reset-password?token={token}#lang=en`, 'https://app.example.com/reset-password?t={token}', `${own}/reset?t={token}`,
    `${own}/reset-password#token={token}?utm_source=mail`, `${own}/reset-password?token={token};lang=en`, `${own}/reset-password?token={token}#token=`]) {
    t.same(problemsOf({ PUBLIC_URL: own, PASSWORD_RESET_URL: template }), [], template)
  }
  t.match(problemsOf({ MAIL_FROM: 'not an address' }), [/^MAIL_FROM: /])
  t.match(problemsOf({ MAIL_FROM: 'a@example.com\r\nBcc: victim@example.com' }), [/^MAIL_FROM: /], 'no header injection')
  t.match(problemsOf({ PASSWORD_RESET_TTL_SECONDS: '10', EMAIL_VERIFICATION_TTL_SECONDS: '99999999' }), [/^PASSWORD_RESET_TTL_SECONDS/, /^EMAIL_VERIFICATION_TTL_SECONDS/])
  const smtp = problemsOf({ SMTP_URL: 'http://user:hunter2@mail.example.com' })
  t.match(smtp, [/^SMTP_URL: .*\(hidden\)$/])
  t.notOk(smtp.some(p => p.includes('hunter2')), 'the SMTP password is never echoed')
})

t.test('second factor settings: admins need one in production by default; the reauthentication window is bounded', async t => {
  t.equal(loadConfig(production).REQUIRE_MFA_FOR_ADMINS, true)
  t.equal(loadConfig({ ...production, REQUIRE_MFA_FOR_ADMINS: 'false' }).REQUIRE_MFA_FOR_ADMINS, false, 'an operator may turn it off')
  t.equal(loadConfig({}).REQUIRE_MFA_FOR_ADMINS, false, 'off on a developer machine')
  t.equal(loadConfig({ REQUIRE_MFA_FOR_ADMINS: 'true' }).REQUIRE_MFA_FOR_ADMINS, true)
  t.equal(loadConfig({}).REAUTH_MAX_AGE_SECONDS, 600)
  t.match(problemsOf({ REAUTH_MAX_AGE_SECONDS: '5', REQUIRE_MFA_FOR_ADMINS: 'sometimes', MFA_ISSUER: 'a:b' }), [/^REQUIRE_MFA_FOR_ADMINS/, /^REAUTH_MAX_AGE_SECONDS/, /^MFA_ISSUER/])
})

t.test('passkey settings: defaults from PUBLIC_URL and CORS_ORIGINS; origins must be able to use the RP ID', async t => {
  t.same(webauthnSettingsOf(loadConfig({ PUBLIC_URL: 'https://auth.example.com', CORS_ORIGINS: 'https://login.auth.example.com' })),
    { rpId: 'auth.example.com', rpName: 'auth.example.com', origins: ['https://auth.example.com', 'https://login.auth.example.com'] })
  const parent = loadConfig({ PUBLIC_URL: 'https://auth.example.com', CORS_ORIGINS: 'https://app.example.com', WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_RP_NAME: 'Example', MFA_ISSUER: 'Ex' })
  t.same(webauthnSettingsOf(parent), { rpId: 'example.com', rpName: 'Example', origins: ['https://auth.example.com', 'https://app.example.com'] })
  t.equal(webauthnSettingsOf(loadConfig({ MFA_ISSUER: 'Acme' })).rpName, 'Acme')
  t.same(webauthnSettingsOf(loadConfig({})), { rpId: 'localhost', rpName: 'localhost', origins: ['http://localhost:3000'] }, 'http://localhost is a secure context')
  t.same(webauthnSettingsOf(loadConfig({ PUBLIC_URL: 'https://auth.example.com', CORS_ORIGINS: 'https://app.example.com,http://localhost:5173' })).origins, ['https://auth.example.com'], 'derived origins that cannot use the RP ID are left out')
  t.match(problemsOf({ PUBLIC_URL: 'https://auth.example.com', WEBAUTHN_RP_ID: 'other.example' }), [/^WEBAUTHN_RP_ID: "other.example" cannot be used/])
  t.match(problemsOf({ PUBLIC_URL: 'https://auth.example.com', WEBAUTHN_ORIGINS: 'https://app.example.com' }), [/^WEBAUTHN_RP_ID: "auth.example.com" is neither the host of https:\/\/app.example.com/])
  t.match(problemsOf({ WEBAUTHN_ORIGINS: 'http://app.example.com,https://x.localhost/path,nonsense' }), [/^WEBAUTHN_ORIGINS: "http:\/\/app/, /^WEBAUTHN_ORIGINS: "https:\/\/x.localhost\/path"/, /^WEBAUTHN_ORIGINS: "nonsense"/])
  t.match(problemsOf({ WEBAUTHN_RP_ID: 'Example.COM' }), [/^WEBAUTHN_RP_ID/])
  t.same(problemsOf({ PUBLIC_URL: 'https://example.com', WEBAUTHN_ORIGINS: 'https://example.com, https://a.example.com' }), [])
})

t.test('.env.example lists every variable with its default', async t => {
  const { readFile } = await import('node:fs/promises')
  const { ConfigSchema } = await import('../src/config.js')
  const text = await readFile(new URL('../.env.example', import.meta.url), 'utf8')
  const listed = Object.fromEntries(text.split('\n').filter(line => /^[A-Z_0-9]+=/.test(line)).map(line => line.split(/=(.*)/s).slice(0, 2)))
  t.same(Object.keys(listed).sort(), Object.keys(ConfigSchema.properties).sort())
  const defaults = loadConfig({}) as Record<string, unknown>
  // Left empty so that a copy does not pin it: its default follows PORT.
  const derived = new Set(['PUBLIC_URL', 'REQUIRE_MFA_FOR_ADMINS'])
  for (const [name, value] of Object.entries(listed)) {
    t.equal(value, defaults[name] === undefined || derived.has(name) ? '' : String(defaults[name]), name)
  }
})

t.test('abuse resistance settings: rates, backoff, keys, Redis', async t => {
  const config = loadConfig({})
  t.same(rateLimitsOf(config).loginIp, { max: 30, windowSeconds: 300 })
  t.same(rateOf('5/60'), { max: 5, windowSeconds: 60 })
  t.match(problemsOf({ RATE_LIMIT_LOGIN_IP: '30 per minute', RATE_LIMIT_DEFAULT: '0/60' }), [/^RATE_LIMIT_DEFAULT: .*requests\/seconds/, /^RATE_LIMIT_LOGIN_IP: /])
  t.match(problemsOf({ LOGIN_BACKOFF_BASE_SECONDS: '600', LOGIN_BACKOFF_MAX_SECONDS: '60' }), [/^LOGIN_BACKOFF_MAX_SECONDS: must be at least/])
  t.match(problemsOf({ LOGIN_BACKOFF_AFTER_FAILURES: '20', LOGIN_LOCKOUT_AFTER_FAILURES: '10' }), [/^LOGIN_LOCKOUT_AFTER_FAILURES: must be at least/])
  t.match(problemsOf({ LOGIN_LOCKOUT_AFTER_FAILURES: '51' }), [/^LOGIN_LOCKOUT_AFTER_FAILURES: /], 'NIST SP 800-63B: at most 100 per account, two identifiers')
  t.match(problemsOf({ JWT_ALGORITHM: 'ES256' }), [/^JWT_KEYS_DIR: required with JWT_ALGORITHM=ES256/])
  t.match(problemsOf({ JWT_ALGORITHM: 'none' }), [/^JWT_ALGORITHM: /])
  const redis = problemsOf({ REDIS_URL: 'http://user:hunter2@cache:6379' })
  t.match(redis, [/^REDIS_URL: .*\(hidden\)$/])
  t.notOk(redis.some(p => p.includes('hunter2')), 'a Redis password is never echoed')
})

t.test('CORS with credentials never opens to everyone; production wants https origins', async t => {
  t.match(problemsOf({ CORS_ORIGINS: '*' }), [/^CORS_ORIGINS: "\*" would let any page call with the user's cookies/])
  t.match(problemsOf({ CORS_ORIGINS: 'https://app.example.com, null' }), [/^CORS_ORIGINS: "null" would let any page/])
  t.same(problemsOf({ ...production, CORS_ORIGINS: 'https://app.example.com' }), [])
  // Regression: a pattern passed as a literal origin, which never matched.
  t.match(problemsOf({ CORS_ORIGINS: 'https://*.example.com' }), [/^CORS_ORIGINS: "https:\/\/\*\.example\.com" is a pattern/])
  t.match(problemsOf({ ...production, CORS_ORIGINS: 'http://app.example.com' }), [/^CORS_ORIGINS: "http:\/\/app.example.com" is not https/])
  // Regression: production took passkeys from http://localhost pages.
  t.same(problemsOf({ ...production, WEBAUTHN_RP_ID: 'localhost', WEBAUTHN_ORIGINS: 'http://localhost:3000' }).filter(problem => problem.startsWith('WEBAUTHN_ORIGINS')), ['WEBAUTHN_ORIGINS: "http://localhost:3000" is not https; production takes passkeys from https pages only'])
})

t.test('PUBLIC_URL follows where the service listens unless it is set', async t => {
  t.equal(loadConfig({}).PUBLIC_URL, 'http://localhost:3000')
  t.equal(loadConfig({ PORT: '4100' }).PUBLIC_URL, 'http://localhost:4100', 'regression: the start log named port 3000 whatever PORT was')
  t.equal(loadConfig({ HOST: '0.0.0.0', PORT: '8080' }).PUBLIC_URL, 'http://localhost:8080')
  t.equal(loadConfig({ HOST: '192.0.2.7', PORT: '80' }).PUBLIC_URL, 'http://192.0.2.7')
  t.equal(loadConfig({ HOST: 'fd00::7', PORT: '81' }).PUBLIC_URL, 'http://[fd00::7]:81')
  t.equal(loadConfig({ PORT: '4100', PUBLIC_URL: 'https://auth.example.com' }).PUBLIC_URL, 'https://auth.example.com')
  t.match(problemsOf({ PORT: 'x' }), [/^PORT: /], 'a bad PORT is reported once, not as a bad PUBLIC_URL too')
})

t.test('db:migrate reads the database settings alone: production needs no secret for it', async t => {
  t.same(loadDatabaseConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgresql://db/auth', DATA_DIR: '/var/lib/auth' }), {
    DATABASE_URL: 'postgresql://db/auth',
    DATA_DIR: '/var/lib/auth',
    DATABASE_POOL_SIZE: 10,
    DATABASE_CONNECT_TIMEOUT_SECONDS: 5,
    DATABASE_QUERY_TIMEOUT_SECONDS: 10
  })
  t.throws(() => loadDatabaseConfig({ DATABASE_URL: 'mysql://db' }), ConfigError)
})

t.test('a URL that may hold a password must read as a URL, and is never shown (regression: the password reached the start-up log)', async t => {
  const hint = 'not a valid URL; percent-encode reserved characters in the password (/ as %2F, ? as %3F, # as %23)'
  const unencoded = {
    SMTP_URL: ['smtp://mailer:pa/ss-hunter2@mail.example.com:587', 'smtps://mailer:pa#ss-hunter2@mail.example.com', 'smtp://mailer:pa?ss-hunter2@mail.example.com'],
    REDIS_URL: ['redis://:pa/ss-hunter2@cache:6379', 'rediss://user:pa#ss-hunter2@cache'],
    // Digits before the /: a URL after all, with the host "auth", port 12 and the rest of the password as a path.
    DATABASE_URL: ['postgresql://auth:12/34-hunter2@db:5432/auth', 'postgres://auth:pa/ss-hunter2@db/auth']
  }
  for (const [name, values] of Object.entries(unencoded)) {
    for (const value of values) {
      const problems = problemsOf({ [name]: value })
      t.same(problems, [`${name}: ${hint}`], value)
      t.notMatch(problems.join('\n'), /hunter2/)
    }
  }
  t.same(problemsOf({ SMTP_URL: 'smtp://mailer:pa%2Fss%23x@mail.example.com:587?requireTLS=false', REDIS_URL: 'redis://:pa%2Fss@cache:6379/2', DATABASE_URL: 'postgresql://auth:12%2F34@db:5432/auth' }), [], 'percent-encoded')
  t.same(problemsOf({ SMTP_URL: 'smtp://mailer:p@ss@mail.example.com', DATABASE_URL: 'postgresql:///auth?host=/var/run/postgresql' }), [], 'an @ in the password (the last one ends it), a socket directory')
  // Regression: an @ in a query parameter (pg reads them into its settings) was taken for a broken password.
  t.same(problemsOf({ DATABASE_URL: 'postgres://db/auth?user=svc@tenant&application_name=auth@eu', SMTP_URL: 'smtp://mail:587?name=auth@host', REDIS_URL: 'redis://u:p@redis/0?name=a@b' }), [], 'an @ in the query')
  t.throws(() => loadDatabaseConfig({ DATABASE_URL: 'postgresql://auth:pa/ss-hunter2@db/auth' }), new ConfigError([`DATABASE_URL: ${hint}`]), 'db:migrate checks it too')
})

t.test('production: PUBLIC_URL set and https, link templates https (regression: tokens and links for http://localhost:3000)', async t => {
  t.same(problemsOf({ ...production, PUBLIC_URL: '' }), ["PUBLIC_URL: required in production (the service's public https origin, like https://auth.example.com)"])
  t.same(problemsOf({ ...production, PUBLIC_URL: 'http://auth.example.com' }), ['PUBLIC_URL: "http://auth.example.com" is not https; production serves the API, its pages and its links over https only (TLS may end at the proxy)'])
  t.match(problemsOf({ ...production, PASSWORD_RESET_URL: 'http://app.example.com/reset#token={token}', EMAIL_VERIFICATION_URL: 'http://app.example.com/verify?token={token}' }), [
    /^PASSWORD_RESET_URL: "http:\/\/app.example.com\/reset#token=\{token\}" is not https/,
    /^EMAIL_VERIFICATION_URL: .* is not https/
  ])
  t.same(problemsOf({ ...production, PASSWORD_RESET_URL: 'https://app.example.com/reset#token={token}', EMAIL_VERIFICATION_URL: 'https://app.example.com/verify#token={token}' }), [])
  t.same(problemsOf({ PUBLIC_URL: 'http://auth.internal', PASSWORD_RESET_URL: 'http://app.internal/reset#token={token}' }), [], 'http on a developer\'s machine')
})

// Regression: any string of 3 characters made the first admin, who could then never be mailed a reset link.
t.test('ADMIN_EMAIL: an address as registration takes one', async t => {
  for (const bad of ['not an email', 'admin@localhost', 'admin@10.0.0.5']) t.match(problemsOf({ ADMIN_EMAIL: bad }), [/^ADMIN_EMAIL: must be an email address/], bad)
  t.same(problemsOf({ ADMIN_EMAIL: 'admin@example.com' }), [])
})

// Regression: "0x1" read as 0, which turned load shedding off, and "1e-1" as 0.1.
t.test('a fraction is written in digits', async t => {
  for (const loose of ['0x1', '1e-1', '.5', '0.9.1', 'Infinity']) {
    t.match(problemsOf({ LOAD_SHEDDING_MAX_EVENT_LOOP_UTILIZATION: loose }), [/^LOAD_SHEDDING_MAX_EVENT_LOOP_UTILIZATION: must be a number from 0 to 1, in digits/], loose)
  }
  t.equal(loadConfig({ LOAD_SHEDDING_MAX_EVENT_LOOP_UTILIZATION: ' 0.95 ' }).LOAD_SHEDDING_MAX_EVENT_LOOP_UTILIZATION, 0.95)
  t.match(problemsOf({ LOAD_SHEDDING_MAX_EVENT_LOOP_UTILIZATION: '1.5' }), [/must be a number from 0 to 1/])
})

t.test('TRUST_PROXY: each entry as Fastify reads it, one line per bad one (regression: a stack trace at start)', async t => {
  t.same(problemsOf({ TRUST_PROXY: '10.0.0.5, 10.0.0.0/24, 192.168.0.0/255.255.0.0, fd00::/8, ::1, loopback, uniquelocal, linklocal' }), [])
  const notAnAddress = 'is not an IP address, a CIDR range like 10.0.0.0/8, or one of loopback, linklocal, uniquelocal'
  t.same(problemsOf({ TRUST_PROXY: 'true, 10.0.0.1/33,nginx' }), [`TRUST_PROXY: "true" ${notAnAddress}`, `TRUST_PROXY: "10.0.0.1/33" ${notAnAddress}`, `TRUST_PROXY: "nginx" ${notAnAddress}`])
  // Any client could set X-Forwarded-For to a new address at each request: past every per-ip limit.
  const everyone = "would trust a large share of all client addresses, so those clients could name their own (rate limits, sessions, audit trail); list the proxy's addresses"
  // Regression (the last three): half or more of IPv4, or all of global IPv6, passed.
  for (const catchAll of ['0.0.0.0/0', '::/0', '10.1.2.3/0', '0.0.0.0/0.0.0.0', '::ffff:0:0/96', '0.0.0.0/1', '2000::/3', '::/1']) {
    t.same(problemsOf({ TRUST_PROXY: catchAll }), [`TRUST_PROXY: "${catchAll}" ${everyone}`], catchAll)
    t.same(problemsOf({ ...production, TRUST_PROXY: `10.0.0.5,${catchAll}` }), [`TRUST_PROXY: "${catchAll}" ${everyone}`], `${catchAll} in production too`)
  }
  // Regression: split in parts, each under the bar, a catch-all passed.
  for (const split of ['0.0.0.0/3,32.0.0.0/3,64.0.0.0/3', '0.0.0.0/3,32.0.0.0/3,64.0.0.0/3,96.0.0.0/3,128.0.0.0/2,192.0.0.0/3', '2000::/6, 2400::/6, 2800::/6']) {
    t.same(problemsOf({ TRUST_PROXY: split }), [`TRUST_PROXY: together, "${split}" ${everyone}`], split)
  }
  // Regression: "1" (the usual hop count elsewhere) read as 0.0.0.1, so the proxy was not trusted,
  // and every client shared its address; other short spellings likewise.
  for (const loose of ['1', '2', '127.1', '0x7f000001', '10.0.0.1/0x8']) {
    t.match(problemsOf({ TRUST_PROXY: loose }), [new RegExp(`^TRUST_PROXY: "${loose.replace('.', '\\.')}" is not an IP address`)], loose)
  }
  t.match(problemsOf({ TRUST_PROXY: '1' })[0], /a number of hops is not taken/)
  t.same(problemsOf({ TRUST_PROXY: '103.21.244.0/22, 104.16.0.0/13, 172.64.0.0/13, 2606:4700::/32, 2400:cb00::/32' }), [], 'a CDN\'s published ranges')
})
