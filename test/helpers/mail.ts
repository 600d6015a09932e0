// A real SMTP server on the loopback interface: the app sends to it, tests read what arrived and follow the links.
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { simpleParser } from 'mailparser'
import { SMTPServer, type SMTPServerOptions } from 'smtp-server'

function tokenOf (link: URL): string | undefined {
  return new URLSearchParams(link.hash.slice(1)).get('token') ?? link.searchParams.get('token') ?? undefined
}

export interface ReceivedMail {
  /** Envelope recipients. */
  to: string[]
  from: string
  subject: string
  text: string
  html: string
  /** The first link in the plain text, and its `token` parameter (in the fragment, as the default links carry it, or the query). */
  link: string | undefined
  token: string | undefined
  messageId: string | undefined
}

export interface MailServer {
  /** For SMTP_URL. */
  url: string
  received: ReceivedMail[]
  /** The next mail to `address` (optionally with a matching subject) not taken before; fails after `timeoutMs`. */
  nextMail: (address: string, options?: { subject?: RegExp, timeoutMs?: number }) => Promise<ReceivedMail>
  /** Mails to `address` not taken yet. */
  untaken: (address: string) => ReceivedMail[]
  /** Stops listening: connections are refused, as when the mail server is down. */
  down: () => Promise<void>
  /** Listens again on the same port. */
  up: () => Promise<void>
}

interface Waiter { matches: (mail: ReceivedMail) => boolean, resolve: (mail: ReceivedMail) => void }

interface TapTest { teardown: (fn: () => unknown) => void }

export interface MailServerOptions {
  /** Runs when a mail has arrived, before the server answers that it took it. */
  beforeAccepting?: (mail: ReceivedMail) => Promise<void>
}

/** Starts the server; it stops when the test ends (after an app built later in the test has closed and flushed). */
export async function startMailServer (t: TapTest, { beforeAccepting }: MailServerOptions = {}): Promise<MailServer> {
  const received: ReceivedMail[] = []
  const taken = new Set<ReceivedMail>()
  const waiters: Waiter[] = []

  function deliver (mail: ReceivedMail): void {
    received.push(mail)
    const waiter = waiters.find(w => w.matches(mail))
    if (waiter === undefined) return
    waiters.splice(waiters.indexOf(waiter), 1)
    taken.add(mail)
    waiter.resolve(mail)
  }

  // Recipients starting with "rejected" get a permanent failure, as an unknown mailbox would.
  const newServer = () => new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    closeTimeout: 1000,
    onRcptTo (address, _session, callback) {
      if (!address.address.startsWith('rejected')) return callback()
      callback(Object.assign(new Error('No such mailbox'), { responseCode: 550 }))
    },
    onData (stream, session, callback) {
      const to = session.envelope.rcptTo.map(r => r.address.toLowerCase())
      const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address
      simpleParser(stream).then(async parsed => {
        const text = parsed.text ?? ''
        const link = /https?:\/\/\S+/.exec(text)?.[0]
        const token = link === undefined ? undefined : tokenOf(new URL(link))
        const mail = { to, from, subject: parsed.subject ?? '', text, html: parsed.html === false ? '' : parsed.html, link, token, messageId: parsed.messageId }
        await beforeAccepting?.(mail)
        deliver(mail)
        callback()
      }).catch(callback)
    }
  })
  let server: SMTPServer | null = newServer()
  server.listen(0, '127.0.0.1')
  await once(server.server, 'listening')
  const { port } = server.server.address() as AddressInfo
  const close = () => new Promise<void>(resolve => { if (server === null) resolve(); else server.close(() => resolve()); server = null })
  t.teardown(close)

  const matcher = (address: string, subject?: RegExp) => (mail: ReceivedMail) =>
    mail.to.includes(address.toLowerCase()) && (subject === undefined || subject.test(mail.subject))

  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    down: close,
    async up () {
      server = newServer()
      server.listen(port, '127.0.0.1')
      await once(server.server, 'listening')
    },
    untaken: address => received.filter(mail => !taken.has(mail) && matcher(address)(mail)),
    nextMail (address, { subject, timeoutMs = 10_000 } = {}) {
      const matches = matcher(address, subject)
      const ready = received.find(mail => !taken.has(mail) && matches(mail))
      if (ready !== undefined) {
        taken.add(ready)
        return Promise.resolve(ready)
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1)
          reject(new Error(`no mail to ${address}${subject === undefined ? '' : ` matching ${subject}`} within ${timeoutMs} ms`))
        }, timeoutMs)
        const waiter: Waiter = { matches, resolve: mail => { clearTimeout(timer); resolve(mail) } }
        waiters.push(waiter)
      })
    }
  }
}

/** A pino destination that keeps every line, parsed, for assertions on what was logged. */
export function logCapture () {
  const lines: Array<Record<string, unknown>> = []
  return {
    lines,
    stream: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } },
    text: () => lines.map(line => JSON.stringify(line)).join('\n')
  }
}

/**
 * A relay whose answers the test scripts (`onConnect`, `onMailFrom`, `onRcptTo`, `onData`,
 * `onClose`), without TLS or authentication; it stops when the test ends. Its smtp:// URL.
 */
export async function startScriptedRelay (t: TapTest, script: Pick<SMTPServerOptions, 'onConnect' | 'onMailFrom' | 'onRcptTo' | 'onData' | 'onClose'>): Promise<string> {
  const server = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'], disableReverseLookup: true, logger: false, closeTimeout: 100, ...script })
  server.listen(0, '127.0.0.1')
  await once(server.server, 'listening')
  t.teardown(() => new Promise<void>(resolve => server.close(() => { resolve() })))
  return `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}`
}
