// Delivering the outbox: claim due mails, render them, send them, record the outcome; retries with backoff, gives up after a bound.
import { setTimeout as sleep } from 'node:timers/promises'
import { isDatabaseUnavailable } from '../../db/errors.js'
import { ATTEMPT_SECONDS, SHUTDOWN, domainOf, failureOf, type MailLog, type MailSender } from './sender.js'
import type { ClaimedMail } from './outbox.js'
import { createMailRenderer, type MailRenderer, type MailRenderingDeps, type NothingToSend, type RenderedMail } from './rendering.js'
import type { MailMetrics } from '../metrics.js'

export interface MailDeliveryDeps extends MailRenderingDeps {
  sender: MailSender
  log: MailLog
  metrics: MailMetrics
  now: () => Date
  retry: { maxAttempts: number, baseSeconds: number }
}

/** Mails claimed at once; they are sent together. */
const BATCH = 8
/**
 * How long a claimed mail is left to its claimant: longer than a batch can take to send (its
 * mails go in parallel, each attempt cut off after ATTEMPT_SECONDS), or another instance
 * would send the same mail. A crash in the middle of an attempt delays that mail by this
 * much, after which any instance sends it again.
 */
export const LEASE_SECONDS = 2 * ATTEMPT_SECONDS
/** The longest wait between two attempts. */
const MAX_RETRY_SECONDS = 3600

/** What sending one mail needs: the outbox and the sender, how to render, and what to tell of the outcome. */
interface Courier extends Pick<MailDeliveryDeps, 'outbox' | 'sender' | 'log' | 'metrics' | 'now' | 'retry'> {
  render: MailRenderer
  /** Aborted when the process stops with sends still under way. */
  stopping: AbortController
}

/**
 * Renders and sends one claimed mail, then takes it off the outbox; a failed send is retried
 * later or given up. Rejects only when a database step fails with the database away: the
 * claim expires and the mail is tried again then.
 */
async function deliver (courier: Courier, mail: ClaimedMail): Promise<void> {
  const { render, sender, outbox, metrics, log } = courier
  let rendered: RenderedMail
  try {
    rendered = await render(mail)
  } catch (error) {
    if (isDatabaseUnavailable(error)) throw error
    return await failed(courier, mail, error)
  }
  if ('nothing' in rendered) return await nothingToSend(courier, mail, rendered.nothing)
  try {
    await sender.send(mail.id, rendered.send, courier.stopping.signal)
  } catch (error) {
    // Whatever sending fails with is the mail server's or the network's, even a code a
    // database socket also gives (ETIMEDOUT, ECONNRESET): never a database outage.
    return await failed(courier, mail, error)
  }
  await removeSent(outbox, mail.id)
  metrics.mail('sent')
  log.debug({ mailId: mail.id, kind: mail.kind, domain: domainOf(mail.recipient) }, 'mail sent')
}

/** The line that says why a mail was dropped, one per reason; none names the address. */
const DROPPED: Record<Exclude<NothingToSend, 'taken_over'>, string> = {
  link_dead: 'mail dropped: its link was spent, revoked or expired before it went out, or derived under a replaced AUTH_SECRET',
  no_active_account: 'mail dropped: no active account has the address the reset was asked for',
  account_changed: 'mail dropped: the account was deactivated, deleted or given another address as its reset link was being made'
}

/**
 * A mail with nothing to send: dropped, counted and said, never silent (a burst of them follows an
 * AUTH_SECRET replaced with links still queued), unless another attempt took it over.
 */
async function nothingToSend ({ outbox, metrics, log }: Courier, mail: ClaimedMail, reason: NothingToSend): Promise<void> {
  const details = { mailId: mail.id, kind: mail.kind, domain: domainOf(mail.recipient), reason }
  if (reason === 'taken_over') {
    // Its row is gone, and what became of it was counted by the attempt that saw it through:
    // counted here too, a mail sent once would show as sent and dropped.
    log.debug(details, 'mail taken over by another attempt while this one was stalled; nothing left to do')
    return
  }
  await removeSent(outbox, mail.id)
  metrics.mail('dropped')
  log.info(details, DROPPED[reason])
}

/** Tries to take a sent mail off the outbox, a second apart. */
const REMOVE_ATTEMPTS = 3

/**
 * A sent mail left in the outbox is sent again once its claim expires: one dropped connection
 * or stalled statement between the send and its removal must not do that, so the removal is
 * tried again. Only a longer outage leaves it there (at least once, as docs/accounts-and-mail.md promises).
 */
async function removeSent (outbox: Courier['outbox'], id: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await outbox.remove(id)
    } catch (error) {
      if (attempt === REMOVE_ATTEMPTS || !isDatabaseUnavailable(error)) throw error
      await sleep(1000)
    }
  }
}

/** Where a 5xx reply is about this mail (its recipient, its content), not about the relay. */
const MAIL_COMMANDS = new Set(['RCPT TO', 'DATA'])

/**
 * Whether the relay refused this mail for good: a 5xx reply to its recipient or its content (no
 * such mailbox, refused as spam), which no retry changes. A 5xx at the greeting, to the
 * sender or to the login (554 no service, 550 sender not allowed, 535 bad credentials), or a
 * policy's refusal of the recipient (5.7.x: "relaying denied", the commonest
 * misconfiguration) is the relay's state or its setting, which an operator mends: the mail
 * waits for its next attempt (regression: every mail queued meanwhile was given up, reset
 * links included). A policy's refusal of the content (spam) stays final.
 */
function isRefusedForGood ({ responseCode, command }: Record<string, string | number>, error: unknown): boolean {
  const reply = (error as { response?: unknown } | null)?.response
  const relayDenied = command === 'RCPT TO' && typeof reply === 'string' && /^5\d\d[ -]5\.7\./.test(reply)
  return typeof responseCode === 'number' && responseCode >= 500 && MAIL_COMMANDS.has(String(command)) && !relayDenied
}

/** A send that failed: tried again after a doubling wait, or given up when final or after the last attempt. */
async function failed ({ outbox, log, metrics, now, retry }: Courier, mail: ClaimedMail, error: unknown): Promise<void> {
  const failure = failureOf(error)
  const details = { mailId: mail.id, kind: mail.kind, domain: domainOf(mail.recipient), attempts: mail.attempts, ...failure }
  if (failure.code === SHUTDOWN) {
    // Due again at once, for another instance or the next start, rather than when the claim expires.
    await outbox.retryAt(mail.id, now())
    log.info(details, 'mail not sent before shutdown; due again now')
    return
  }
  const permanent = isRefusedForGood(failure, error)
  if (permanent || mail.attempts >= retry.maxAttempts) {
    log.error(details, 'mail given up')
    metrics.mail('given_up')
    await outbox.remove(mail.id)
    return
  }
  const delaySeconds = Math.min(MAX_RETRY_SECONDS, retry.baseSeconds * 2 ** (mail.attempts - 1))
  // Said once it is recorded: until then the mail is still claimed, and a crash would leave
  // it waiting for the claim to expire rather than for its retry.
  await outbox.retryAt(mail.id, new Date(now().getTime() + delaySeconds * 1000))
  log.warn({ ...details, retryInSeconds: delaySeconds }, 'mail not sent; will retry')
  metrics.mail('retry')
}

/**
 * Claims and delivers batches until one comes back short (none was left due), or until
 * delivery stops. A mail queued meanwhile asks for another pass (`wake`), so stopping at a
 * short batch saves a registration's mail the round trip of an empty claim.
 */
async function drain (courier: Courier, isStopped: () => boolean): Promise<void> {
  for (let full = true; full && !isStopped();) {
    const batch = await courier.outbox.claim(BATCH, LEASE_SECONDS)
    // Every mail of the batch is seen through, even when one finds the database away: a pass
    // (and so `flush` and `stop`) ends only when none of its sends is still under way.
    const outcomes = await Promise.allSettled(batch.map(mail => deliver(courier, mail)))
    const unavailable = outcomes.find(outcome => outcome.status === 'rejected')
    if (unavailable !== undefined) throw unavailable.reason
    full = batch.length === BATCH
  }
}

/**
 * Runs `pass` one at a time per process: asked for during a pass, it runs once more after it.
 * A pass that fails (the database is away) is logged; the next poll or wake-up tries again,
 * and the mails it had claimed are due again when their claim expires.
 */
function createPassRunner (pass: (isStopped: () => boolean) => Promise<void>, log: MailLog) {
  const state: { running: Promise<void> | null, again: boolean, stopped: boolean } = { running: null, again: false, stopped: false }
  const isStopped = () => state.stopped

  function run (): Promise<void> {
    if (state.running !== null) {
      state.again = true
      return state.running
    }
    state.running = (async () => {
      do {
        state.again = false
        await pass(isStopped).catch((error: unknown) => {
          if (isDatabaseUnavailable(error)) log.warn(failureOf(error), 'mail delivery paused: the database is unavailable')
          else log.error(failureOf(error), 'mail delivery pass failed')
        })
      } while (state.again && !state.stopped)
    })().finally(() => { state.running = null })
    return state.running
  }

  return {
    run,
    isStopped,
    /** Resolves once no pass is under way (a pass may be asked for again while one runs). */
    async idle (): Promise<void> {
      while (state.running !== null) await state.running
    },
    stop (): void {
      state.stopped = true
    }
  }
}

export function createMailDelivery (deps: MailDeliveryDeps) {
  const courier: Courier = { ...deps, render: createMailRenderer(deps), stopping: new AbortController() }
  const passes = createPassRunner(isStopped => drain(courier, isStopped), deps.log)
  let timer: NodeJS.Timeout | undefined

  return {
    /** After a commit that queued mail: deliver it now rather than at the next poll. */
    wake (): void {
      if (!passes.isStopped()) passes.run().catch(() => {})
    },

    /** Looks for due mail (other instances', retries) every `pollSeconds`. */
    start (pollSeconds: number): void {
      timer = setInterval(() => { if (!passes.isStopped()) passes.run().catch(() => {}) }, pollSeconds * 1000)
      timer.unref()
      passes.run().catch(() => {})
    },

    /** Delivers every mail due now, and resolves when none is left (those waiting for a retry stay). */
    async flush (): Promise<void> {
      await passes.run()
      await passes.idle()
    },

    /**
     * Stops polling and lets the pass under way finish, its sends cut short after `graceMs`
     * (an attempt may take a minute, past the shutdown's timeout: the process was killed in the
     * middle of it, and the mail waited for its claim to expire); what is left waits in the
     * database, due again at once, for another instance or the next start.
     */
    async stop (graceMs = Infinity): Promise<void> {
      passes.stop()
      clearInterval(timer)
      const graceOver = Number.isFinite(graceMs) ? sleep(graceMs, 'over' as const, { ref: false }) : new Promise<never>(() => {})
      if (await Promise.race([passes.idle(), graceOver]) === 'over') courier.stopping.abort()
      await passes.idle()
      deps.sender.close()
    }
  }
}

export type MailDelivery = ReturnType<typeof createMailDelivery>
