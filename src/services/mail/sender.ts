// Sending one mail: nodemailer's SMTP transport, or the log in development. What to send and when is the outbox's business.
import nodemailer from 'nodemailer'
import { printable, printableText } from '../../log-redaction.js'

export interface OutgoingMail {
  to: string
  subject: string
  text: string
  html: string
}

/** What the mail code needs of a logger: pino's methods. */
export interface MailLog {
  debug: (details: object, message: string) => void
  info: (details: object, message: string) => void
  warn: (details: object, message: string) => void
  error: (details: object, message: string) => void
}

/** The part of a nodemailer transport used here. */
export interface MailTransport {
  /** Ends the exchange, its connection closed, when `signal` aborts. */
  sendMail: (message: OutgoingMail & { from: string, messageId: string, signal: AbortSignal }) => Promise<unknown>
  close: () => void
}

/**
 * The longest one attempt may take in all. The timeouts of the SMTP transport bound each
 * wait, not their sum: a slow relay that answers every command just in time could otherwise
 * keep a mail past its claim (twice this), and another instance would send it too.
 */
export const ATTEMPT_SECONDS = 60

/** The code of a send cut short by the process stopping. */
export const SHUTDOWN = 'ESHUTDOWN'

export interface MailSender {
  /**
   * Sends `mail` with `id` in its Message-ID, the same at every attempt: a receiving system
   * that got it already can tell a resend (after a crash between sending and recording it).
   * `stop` cuts the exchange short (the process is stopping): it then fails with code ESHUTDOWN.
   */
  send: (id: string, mail: OutgoingMail, stop?: AbortSignal) => Promise<void>
  close: () => void
}

export interface MailSenderOptions {
  /** Used as is when given; otherwise made from `smtpUrl`; with neither, mails go to the log. */
  transport?: MailTransport | undefined
  smtpUrl?: string | undefined
  from: string
  log: MailLog
  /** ATTEMPT_SECONDS, in milliseconds, unless a test shortens it. */
  attemptMs?: number
}

export function createMailSender ({ transport, smtpUrl, from, log, attemptMs = ATTEMPT_SECONDS * 1000 }: MailSenderOptions): MailSender {
  const sender = transport ?? (smtpUrl === undefined ? logTransport(log) : smtpTransport(smtpUrl))
  const domain = /@([^@\s>]+)>?$/.exec(from)?.[1] ?? 'localhost'
  return {
    async send (id, mail, stop) {
      const deadline = AbortSignal.timeout(attemptMs)
      try {
        await sender.sendMail({ from, messageId: `<${id}@${domain}>`, ...mail, signal: stop === undefined ? deadline : AbortSignal.any([deadline, stop]) })
      } catch (error) {
        if (stop?.aborted === true) throw Object.assign(new Error('SMTP exchange cut short: the process is stopping', { cause: error }), { code: SHUTDOWN })
        // Reported with the code of the transport's own timeouts, which it is one more of.
        if (deadline.aborted) throw Object.assign(new Error(`SMTP exchange not over after ${attemptMs} ms`, { cause: error }), { code: 'ETIMEDOUT' })
        throw error
      }
    },
    close: () => sender.close()
  }
}

function smtpTransport (smtpUrl: string): MailTransport {
  // Credentials never cross the network in the clear: with a user in an smtp:// URL, STARTTLS
  // is required, not just used when offered (someone on the path can strip the offer, and then
  // read the password and every link). `?requireTLS=false` in the URL still opts out.
  const url = new URL(smtpUrl)
  const requireTLS = url.protocol === 'smtp:' && url.username !== ''
  // Bounded waits: a stuck mail server must not hold a mail, or the shutdown, for ever (the
  // whole exchange is bounded too, by ATTEMPT_SECONDS).
  return nodemailer.createTransport({ url: smtpUrl, requireTLS, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 })
}

// Development without SMTP_URL (production refuses to start so): the mail, link included, is
// written to the log, where the developer can follow it; printable, since a mail may quote
// what a user typed (a passkey's name).
function logTransport (log: MailLog): MailTransport {
  return {
    async sendMail ({ to, subject, text }) {
      log.info({ mail: { to, subject: printable(subject), text: printableText(text) } }, 'mail not sent (no SMTP_URL); its text is logged instead')
    },
    close () {}
  }
}

export function domainOf (address: string): string {
  return address.slice(address.lastIndexOf('@') + 1)
}

/** Only fixed fields of an error: messages may quote the address, the server's reply or the mail itself. */
export function failureOf (error: unknown): Record<string, string | number> {
  const { code, responseCode, command } = (error ?? {}) as Record<string, unknown>
  const fields: Record<string, string | number> = {}
  if (typeof code === 'string') fields.code = code
  if (typeof responseCode === 'number') fields.responseCode = responseCode
  if (typeof command === 'string') fields.command = command.split(':')[0] as string
  return fields
}
