// AUDIT_RETENTION_DAYS, SESSION_RETENTION_DAYS and UNVERIFIED_ACCOUNT_RETENTION_DAYS: this instance deletes what is past them, at start and every hour after.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Deleted, RetentionService } from '../services/retention.js'

const PASS_INTERVAL_MS = 60 * 60 * 1000

declare module 'fastify' {
  interface FastifyInstance {
    /** One retention pass now; resolves with what it deleted. */
    retention: { pass: () => Promise<Deleted> }
  }
}

/**
 * The audit trail, ended sessions, mailed links and failure counts hold client addresses,
 * user agents, email addresses and login identifiers: personal data that should not be kept
 * for ever. Each instance runs the pass; passes at once skip each other's rows, so the work is
 * shared rather than repeated.
 */
async function retentionPlugin (app: FastifyInstance, { retention }: { retention: RetentionService }) {
  const stopping = new AbortController()
  let running: Promise<Deleted> | undefined
  const pass = async () => {
    running ??= retention.pass(stopping.signal).finally(() => { running = undefined })
    return await running
  }
  app.decorate('retention', { pass })

  const scheduled = () => {
    pass().then(
      deleted => { if (Object.values(deleted).some(count => count > 0)) app.log.info({ deleted }, 'deleted what is past AUDIT_RETENTION_DAYS, SESSION_RETENTION_DAYS and UNVERIFIED_ACCOUNT_RETENTION_DAYS') },
      // A database outage: the next pass, an hour later, deletes what this one left.
      (err: unknown) => { app.log.warn({ err }, 'retention pass failed') }
    )
  }
  let timer: NodeJS.Timeout | undefined
  app.addHook('onReady', async () => {
    scheduled()
    timer = setInterval(scheduled, PASS_INTERVAL_MS).unref()
  })
  app.addHook('onClose', async () => {
    clearInterval(timer)
    stopping.abort()
    await running?.catch(() => {})
  })
}

export const retention = fp(retentionPlugin, { name: 'retention' })
