// Outgoing mail: a small in-process queue in front of nodemailer's SMTP transport (or the log, in development).
import nodemailer from 'nodemailer'

export interface OutgoingMail {
  to: string
  subject: string
  text: string
  html: string
}

/** A job that prepares a mail off the request path; null when there is nothing to send. */
export type MailJob = () => Promise<OutgoingMail | null>

/** What the mailer needs of a logger: pino's methods. */
export interface MailLog {
  debug: (details: object, message: string) => void
  info: (details: object, message: string) => void
  warn: (details: object, message: string) => void
  error: (details: object, message: string) => void
}

/** The part of a nodemailer transport the mailer uses. */
export interface MailTransport {
  sendMail: (message: OutgoingMail & { from: string }) => Promise<unknown>
  close: () => void
}

export interface MailerOptions {
  /** Used as is when given; otherwise made from `smtpUrl`; with neither, mails go to the log. */
  transport?: MailTransport | undefined
  smtpUrl?: string | undefined
  from: string
  log: MailLog
  /** Mails being sent at once. */
  concurrency?: number
  /** Mails waiting beyond this many are dropped and logged: a flood cannot exhaust memory. */
  maxPending?: number
}

/**
 * Makes the mailer. Sending never blocks or fails an HTTP answer: `send` and `enqueue` only
 * queue, and failures are logged with the recipient's domain at most — never the address,
 * the token or the link.
 */
export function createMailer ({ transport, smtpUrl, from, log, concurrency = 4, maxPending = 1000 }: MailerOptions) {
  const sender = transport ?? (smtpUrl === undefined ? logTransport(log) : smtpTransport(smtpUrl))
  const waiting: MailJob[] = []
  let running = 0
  let closed = false
  const idle: Array<() => void> = []

  async function run (job: MailJob): Promise<void> {
    let mail: OutgoingMail | null
    try {
      mail = await job()
    } catch (error) {
      log.error(failureOf(error), 'mail not prepared')
      return
    }
    if (mail === null) return
    try {
      await sender.sendMail({ from, ...mail })
      log.debug({ domain: domainOf(mail.to) }, 'mail sent')
    } catch (error) {
      log.error({ domain: domainOf(mail.to), ...failureOf(error) }, 'mail not sent')
    }
  }

  function pump (): void {
    while (running < concurrency && waiting.length > 0) {
      const job = waiting.shift() as MailJob
      running++
      // run() never rejects: every failure is logged inside it.
      run(job).finally(() => {
        running--
        pump()
        if (running === 0 && waiting.length === 0) for (const resolve of idle.splice(0)) resolve()
      }).catch(() => {})
    }
  }

  /** Resolves once every queued mail has been sent or has failed. */
  async function flush (): Promise<void> {
    if (running === 0 && waiting.length === 0) return
    await new Promise<void>(resolve => { idle.push(resolve) })
  }

  function enqueue (job: MailJob): void {
    if (closed) return log.warn({}, 'mail dropped: the mailer is closed')
    if (waiting.length >= maxPending) return log.warn({ pending: waiting.length }, 'mail dropped: the queue is full')
    waiting.push(job)
    pump()
  }

  return {
    /** Queues a mail; returns at once. */
    send (mail: OutgoingMail): void {
      enqueue(async () => mail)
    },

    /** Queues a job that prepares a mail (database work included) and sends what it returns. */
    enqueue,

    flush,

    /** Flushes, then closes the transport; later mails are dropped. Run on app close. */
    async close (): Promise<void> {
      closed = true
      await flush()
      sender.close()
    }
  }
}

export type Mailer = ReturnType<typeof createMailer>

function smtpTransport (smtpUrl: string): MailTransport {
  // Bounded waits: a stuck mail server must not hold a mail, or the shutdown, for ever.
  return nodemailer.createTransport({ url: smtpUrl, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 })
}

// Development without SMTP_URL (production refuses to start so): the mail, link included, is
// written to the log, where the developer can follow it.
function logTransport (log: MailLog): MailTransport {
  return {
    async sendMail ({ to, subject, text }) {
      log.info({ mail: { to, subject, text } }, 'mail not sent (no SMTP_URL); its text is logged instead')
    },
    close () {}
  }
}

function domainOf (address: string): string {
  return address.slice(address.lastIndexOf('@') + 1)
}

// Only fixed fields of the error: messages may quote the address, the server's reply or the mail itself.
function failureOf (error: unknown): Record<string, string | number> {
  const { code, responseCode, command } = (error ?? {}) as Record<string, unknown>
  const fields: Record<string, string | number> = {}
  if (typeof code === 'string') fields.code = code
  if (typeof responseCode === 'number') fields.responseCode = responseCode
  if (typeof command === 'string') fields.command = command.split(':')[0] as string
  return fields
}
