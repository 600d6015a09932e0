// Reference servers: what the service's routes are measured against, in the same run on the same machine.
// `node --import tsx bench/references.ts <bare|jwt|jwt-select|argon2>`; PORT and DATABASE_URL from the environment.
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
} else if (kind === 'argon2') {
  // The same argon2id parameters as the service, then a JWT sign: the floor of a login.
  const options = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const
  const stored = await hash('correct horse battery staple', options)
  app.post('/login', async (request, reply) => {
    const { password } = request.body as { password: string }
    if (!await verify(stored, password)) return reply.code(401).send({ error: 'no' })
    return { accessToken: app.jwt.sign({ sub: 'someone' }) }
  })
} else {
  throw new Error(`unknown reference server: ${kind}`)
}

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
console.log('listening')
