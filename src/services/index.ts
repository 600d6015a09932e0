// Wires the services together: each receives its collaborators explicitly, no module singletons.
import type { Config } from '../config.js'
import type { PrismaClient } from '../db/prisma.js'
import { createAuthService } from './auth.js'
import { createPasswordService } from './passwords.js'
import { createRefreshService } from './refresh.js'
import { createSessionService } from './sessions.js'
import { createSettingsService } from './settings.js'
import { createAccessTokenIssuer, createRefreshTokenCodec, type SignJwt } from './tokens.js'
import { createUserService } from './users.js'

export interface ServiceDeps {
  prisma: PrismaClient
  signJwt: SignJwt
  refreshKey: Buffer
  now: () => Date
}

export function createServices (config: Config, { prisma, signJwt, refreshKey, now }: ServiceDeps) {
  const passwords = createPasswordService({
    memoryKiB: config.ARGON2_MEMORY_KIB,
    timeCost: config.ARGON2_TIME_COST,
    parallelism: config.ARGON2_PARALLELISM
  })
  const settings = createSettingsService(config)
  const codec = createRefreshTokenCodec(refreshKey)
  const issueAccessToken = createAccessTokenIssuer({ sign: signJwt, now })
  const sessions = createSessionService({ prisma, codec, settings, now, maxSessionsPerUser: config.MAX_SESSIONS_PER_USER })
  const refresh = createRefreshService({ prisma, codec, settings, issueAccessToken, now, graceSeconds: config.REFRESH_REUSE_GRACE_SECONDS })
  const users = createUserService({ prisma, passwords, sessions, now })
  const auth = createAuthService({ prisma, passwords, sessions, settings, issueAccessToken })
  return { passwords, settings, sessions, refresh, users, auth }
}

export type Services = ReturnType<typeof createServices>
