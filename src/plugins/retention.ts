// AUDIT_RETENTION_DAYS, SESSION_RETENTION_DAYS and UNVERIFIED_ACCOUNT_RETENTION_DAYS: this instance deletes what is past them, at start and every hour after; expired login challenges every minute.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Deleted, RetentionService } from '../services/retention.js'

const PASS_INTERVAL_MS = 60 * 60 * 1000
// The sweep of login challenges mails the owners of sign-ins that stopped at the second step:
// within minutes of the challenge's expiry, not an hour.
const CHALLENGE_SWEEP_INTERVAL_MS = 60 * 1000

declare module 'fastify' {
  interface FastifyInstance {
    retention: {
      /** One retention pass now; resolves with what it deleted. */
      pass: () => Promise<Deleted>
      /** One sweep of expired login challenges now; resolves with how many it deleted. */
      sweepChallenges: () => Promise<number>
    }
  }
}

/**
 * Runs `job` at start and every `intervalMs`, one run at a time, until the app closes (which
 * aborts `stopping`, then waits for the run under way); the function returned joins the run
 * under way or starts one. A failure (a database outage) is logged: the next run does what
 * this one left.
 */
function every<T> (app: FastifyInstance, stopping: AbortController, intervalMs: number, job: () => Promise<T>, report: (result: T) => void, failure: string): () => Promise<T> {
  let running: Promise<T> | undefined
  const run = async () => {
    running ??= job().finally(() => { running = undefined })
    return await running
  }
  const scheduled = () => { run().then(report, (err: unknown) => { app.log.warn({ err }, failure) }) }
  let timer: NodeJS.Timeout | undefined
  app.addHook('onReady', async () => {
    scheduled()
    timer = setInterval(scheduled, intervalMs).unref()
  })
  app.addHook('onClose', async () => {
    clearInterval(timer)
    stopping.abort()
    await running?.catch(() => {})
  })
  return run
}

/**
 * The audit trail, ended sessions, mailed links and failure counts hold client addresses,
 * user agents, email addresses and login identifiers: personal data that should not be kept
 * for ever. Each instance runs the pass and the sweep; runs at once skip each other's rows, so
 * the work is shared rather than repeated.
 */
async function retentionPlugin (app: FastifyInstance, { retention }: { retention: RetentionService }) {
  const stopping = new AbortController()
  const pass = every(app, stopping, PASS_INTERVAL_MS, async () => await retention.pass(stopping.signal),
    deleted => { if (Object.values(deleted).some(count => count > 0)) app.log.info({ deleted }, 'deleted what is past AUDIT_RETENTION_DAYS, SESSION_RETENTION_DAYS and UNVERIFIED_ACCOUNT_RETENTION_DAYS') },
    'retention pass failed')
  const sweepChallenges = every(app, stopping, CHALLENGE_SWEEP_INTERVAL_MS, async () => await retention.sweepChallenges(stopping.signal), () => {}, 'sweep of expired login challenges failed')
  app.decorate('retention', { pass, sweepChallenges })
}

export const retention = fp(retentionPlugin, { name: 'retention' })
