// Reference servers: what the service's routes are measured against, in the same run on the same machine.
// `node --import tsx bench/references.ts <bare|jwt|jwt-select|jwt-update|argon2|argon2-insert>`; PORT and DATABASE_URL
// from the environment.
import fastifyJwt from '@fastify/jwt'
import { hash, verify } from '@node-rs/argon2'
import Fastify from 'fastify'
import pg from 'pg'

const kind = process.argv[2]
const app = Fastify({ logger: false })
const secret = 'bench-reference-secret-0123456789abcdef'
await app.register(fastifyJwt, { secret, sign: { algorithm: 'HS256' }, verify: { algorithms: ['HS256'] } })
app.get('/ready', async () => ({ ready: true }))

if (kind === 'bare') {
  app.get('/hello', async () => ({ hello: 'world' }))
} else if (kind === 'jwt' || kind === 'jwt-select') {
  const pool = kind === 'jwt-select' ? new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 }) : null
  const userId = process.env.BENCH_USER_ID
  app.get('/hello', async request => {
    const claims = await request.jwtVerify<{ sub: string }>()
    if (pool === null) return { sub: claims.sub }
    // One primary-key SELECT, as a service that reads its user would.
    const { rows } = await pool.query('SELECT id, email, role FROM "User" WHERE id = $1', [userId])
    return rows[0]
  })
  app.get('/token', async () => ({ token: app.jwt.sign({ sub: userId ?? 'someone' }) }))
} else if (kind === 'jwt-update') {
  // The floor of a refresh: the presented refresh token checked (a JWT here), one committed
  // conditional UPDATE … RETURNING on its row, and a new access token and refresh token.
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
  await pool.query('CREATE TABLE IF NOT EXISTS bench_reference_session (id serial PRIMARY KEY, generation int NOT NULL DEFAULT 0)')
  const refreshTokenOf = (sid: number, gen: number) => app.jwt.sign({ sid, gen })
  app.post('/refresh', async (request, reply) => {
    const { sid, gen } = app.jwt.verify<{ sid: number, gen: number }>((request.body as { refreshToken: string }).refreshToken)
    const { rows } = await pool.query<{ generation: number }>('UPDATE bench_reference_session SET generation = generation + 1 WHERE id = $1 AND generation = $2 RETURNING generation', [sid, gen])
    const row = rows[0]
    if (row === undefined) return await reply.code(401).send({ error: 'retired token' })
    return { accessToken: app.jwt.sign({ sub: 'someone' }), refreshToken: refreshTokenOf(sid, row.generation) }
  })
  // Refresh tokens of new rows: every run spends its own, as the service's runs do.
  app.get('/refresh-tokens', async request => {
    const { rows } = await pool.query<{ id: number }>('INSERT INTO bench_reference_session (generation) SELECT 0 FROM generate_series(1, $1) RETURNING id', [Number((request.query as { count: string }).count)])
    return { tokens: rows.map(row => refreshTokenOf(row.id, 0)) }
  })
} else if (kind === 'argon2' || kind === 'argon2-insert') {
  // The same argon2id parameters as the service. `argon2`: a verify then a JWT sign, the floor of a login.
  // `argon2-insert`: a hash, one INSERT (its own transaction) and a sign, the floor of a registration.
  const options = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const
  const stored = await hash('correct horse battery staple', options)
  app.post('/login', async (request, reply) => {
    const { password } = request.body as { password: string }
    if (!await verify(stored, password)) return reply.code(401).send({ error: 'no' })
    return { accessToken: app.jwt.sign({ sub: 'someone' }) }
  })
  if (kind === 'argon2-insert') {
    const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
    await pool.query('CREATE TABLE IF NOT EXISTS bench_reference_user (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), email text NOT NULL UNIQUE, password_hash text NOT NULL)')
    app.post('/register', async (request, reply) => {
      const { email, password } = request.body as { email: string, password: string }
      const passwordHash = await hash(password, options)
      const { rows } = await pool.query<{ id: string }>('INSERT INTO bench_reference_user (email, password_hash) VALUES ($1, $2) RETURNING id', [email, passwordHash])
      return reply.code(201).send({ accessToken: app.jwt.sign({ sub: rows[0]?.id }) })
    })
  }
} else {
  throw new Error(`unknown reference server: ${kind}`)
}

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
console.log('listening')
