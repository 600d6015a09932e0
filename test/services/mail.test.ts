// The mailer's queue (never blocks, flushes, closes, bounded), what it logs, and the templates' escaping.
import t from 'tap'
import { createMailer, type MailLog, type MailTransport, type OutgoingMail } from '../../src/services/mail.js'
import { escapeHtml, linkFor, mask, passwordResetMail, verifyEmailMail } from '../../src/services/mail-templates.js'

type Entry = { level: keyof MailLog, details: Record<string, unknown>, message: string }

function recordingLog () {
  const entries: Entry[] = []
  const at = (level: keyof MailLog) => (details: object, message: string) => { entries.push({ level, details: details as Record<string, unknown>, message }) }
  const log: MailLog = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
  return { log, entries }
}

/** A transport whose sends stay pending until released. */
function heldTransport () {
  const sent: Array<OutgoingMail & { from: string }> = []
  const releases: Array<() => void> = []
  let closed = false
  const transport: MailTransport = {
    sendMail: message => new Promise(resolve => { releases.push(() => { sent.push(message); resolve(undefined) }) }),
    close: () => { closed = true }
  }
  return { transport, sent, release: () => { for (const release of releases.splice(0)) release() }, isClosed: () => closed }
}

const mailTo = (to: string): OutgoingMail => ({ to, subject: 'Hello', text: 'Hello', html: '<p>Hello</p>' })
const tick = () => new Promise(resolve => setImmediate(resolve))

t.test('send returns at once; flush waits for the transport; close flushes, then closes', async t => {
  const { log } = recordingLog()
  const held = heldTransport()
  const mailer = createMailer({ transport: held.transport, from: 'Service <no-reply@example.com>', log, concurrency: 2 })
  for (const to of ['a@example.com', 'b@example.com', 'c@example.com']) mailer.send(mailTo(to))
  let flushed = false
  const flushing = mailer.flush().then(() => { flushed = true })
  await tick()
  t.equal(flushed, false, 'flush waits while mails are pending')
  held.release()
  await tick()
  held.release()
  await flushing
  t.same(held.sent.map(m => m.to), ['a@example.com', 'b@example.com', 'c@example.com'])
  t.equal(held.sent[0]?.from, 'Service <no-reply@example.com>')
  await mailer.flush()

  mailer.send(mailTo('d@example.com'))
  const closing = mailer.close()
  await tick()
  t.notOk(held.isClosed(), 'the transport stays open until the queue is empty')
  held.release()
  await closing
  t.ok(held.isClosed())
  t.equal(held.sent.length, 4, 'close lost no mail')
})

t.test('after close, and beyond maxPending, mails are dropped and logged', async t => {
  const { log, entries } = recordingLog()
  const held = heldTransport()
  const mailer = createMailer({ transport: held.transport, from: 'no-reply@example.com', log, concurrency: 1, maxPending: 2 })
  for (const to of ['a@example.com', 'b@example.com', 'c@example.com', 'd@example.com']) mailer.send(mailTo(to))
  t.match(entries, [{ level: 'warn', message: 'mail dropped: the queue is full', details: { pending: 2 } }], 'one running, two waiting, one dropped')
  const closing = mailer.close()
  mailer.send(mailTo('e@example.com'))
  t.match(entries.at(-1), { level: 'warn', message: 'mail dropped: the mailer is closed' })
  for (let i = 0; i < 3; i++) { await tick(); held.release() }
  await closing
  t.same(held.sent.map(m => m.to), ['a@example.com', 'b@example.com', 'c@example.com'])
})

t.test('failures are logged with the recipient domain at most, never the address, token or link', async t => {
  const { log, entries } = recordingLog()
  const secret = 'https://app.example.com/reset?token=SECRET-TOKEN'
  const failing: MailTransport = {
    sendMail: async message => {
      throw Object.assign(new Error(`Recipient ${message.to} rejected: ${message.text}`), { code: 'EENVELOPE', responseCode: 550, command: 'RCPT TO:<victim@example.org>' })
    },
    close: () => {}
  }
  const mailer = createMailer({ transport: failing, from: 'no-reply@example.com', log })
  mailer.send({ to: 'victim@example.org', subject: 'Reset', text: secret, html: secret })
  mailer.enqueue(async () => { throw Object.assign(new Error(`lookup of victim@example.org failed ${secret}`), { code: 'P1001' }) })
  mailer.enqueue(async () => null)
  await mailer.flush()
  const byMessage = (message: string) => entries.filter(e => e.message === message)
  t.same(byMessage('mail not sent'), [{ level: 'error', message: 'mail not sent', details: { domain: 'example.org', code: 'EENVELOPE', responseCode: 550, command: 'RCPT TO' } }])
  t.same(byMessage('mail not prepared'), [{ level: 'error', message: 'mail not prepared', details: { code: 'P1001' } }])
  t.equal(entries.length, 2, 'a job with nothing to send sends and logs nothing')
  const logged = JSON.stringify(entries)
  t.notMatch(logged, /SECRET-TOKEN|victim@/)

  const odd = createMailer({ transport: { sendMail: async () => { throw new Error('no details') }, close: () => {} }, from: 'no-reply@example.com', log })
  odd.send(mailTo('x@example.net'))
  odd.enqueue(() => Promise.reject(new Error('no code')))
  await odd.flush()
  t.same(byMessage('mail not sent').at(-1)?.details, { domain: 'example.net' })
  t.same(byMessage('mail not prepared').at(-1)?.details, {})
})

t.test('without SMTP the mail is logged at info, link included (development)', async t => {
  const { log, entries } = recordingLog()
  const mailer = createMailer({ from: 'no-reply@localhost', log })
  const content = verifyEmailMail({ link: 'http://localhost:3000/verify-email?token=abc', ttlSeconds: 86_400 })
  mailer.send({ to: 'dev@example.com', ...content })
  await mailer.close()
  t.match(entries, [{ level: 'info', details: { mail: { to: 'dev@example.com', subject: 'Confirm your email address', text: /verify-email\?token=abc/ } } }])
})

t.test('an SMTP transport is made from the URL', async t => {
  const { log, entries } = recordingLog()
  const mailer = createMailer({ smtpUrl: 'smtp://127.0.0.1:1', from: 'no-reply@example.com', log })
  mailer.send(mailTo('someone@example.com'))
  await mailer.close()
  t.match(entries, [{ level: 'error', message: 'mail not sent', details: { domain: 'example.com', code: /^E/ } }])
})

t.test('templates: links and values are escaped in HTML, durations read well, new addresses are masked', async t => {
  t.equal(linkFor('https://app.example.com/r?token={token}&x=1', 'ab-_9'), 'https://app.example.com/r?token=ab-_9&x=1')
  t.equal(escapeHtml('<a href="x">\'&\'</a>'), '&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;')
  const reset = passwordResetMail({ link: 'https://app.example.com/r?token=t&x="><script>', ttlSeconds: 1800 })
  t.notMatch(reset.html, /<script>/)
  t.match(reset.html, /href="https:\/\/app\.example\.com\/r\?token=t&#38;x=&#34;&#62;&#60;script&#62;"/)
  t.match(reset.text, /for 30 minutes/)
  t.match(verifyEmailMail({ link: 'https://x', ttlSeconds: 3600 }).text, /for 1 hour\./)
  t.match(verifyEmailMail({ link: 'https://x', ttlSeconds: 90 }).text, /for 90 seconds/)
  t.equal(mask('ada@example.com'), 'a•••@example.com')
  t.equal(mask('@example.com'), '•••@example.com')
})
