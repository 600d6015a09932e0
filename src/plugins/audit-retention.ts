// AUDIT_RETENTION_DAYS: this instance deletes the audit entries past it, at start and every hour after.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { AuditService } from '../services/admin/audit.js'

const PASS_INTERVAL_MS = 60 * 60 * 1000

export interface AuditRetentionSettings {
  audit: AuditService
  /** 0 keeps every entry. */
  days: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** One retention pass now; resolves with how many entries it deleted. */
    auditRetention: { pass: () => Promise<number> }
  }
}

/**
 * The trail holds client addresses and login identifiers, personal data that should not be
 * kept for ever, and grows with every refused login. Each instance runs the pass; passes at
 * once skip each other's rows, so the work is shared rather than repeated.
 */
async function auditRetentionPlugin (app: FastifyInstance, { audit, days }: AuditRetentionSettings) {
  const stopping = new AbortController()
  let running: Promise<number> | undefined
  const pass = async () => {
    if (days === 0) return 0
    running ??= audit.deleteOlderThan(days, stopping.signal).finally(() => { running = undefined })
    return await running
  }
  app.decorate('auditRetention', { pass })
  if (days === 0) return

  const scheduled = () => {
    pass().then(
      deleted => { if (deleted > 0) app.log.info(`deleted ${deleted} audit entries older than AUDIT_RETENTION_DAYS (${days})`) },
      // A database outage: the next pass, an hour later, deletes what this one left.
      (err: unknown) => { app.log.warn({ err }, 'audit retention pass failed') }
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

export const auditRetention = fp(auditRetentionPlugin, { name: 'audit-retention' })
