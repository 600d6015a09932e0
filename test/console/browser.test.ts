// The admin console in Debian's Chromium (playwright-core), against the real service on a real port: each screen's main
// path and its refusals (a non-admin, the last admin, an ended session, a cross-site request), driven by keyboard and
// labels. With CONSOLE_SCREENSHOTS_DIR set (npm run docs:console) it saves a screenshot of each screen there.
/// <reference lib="dom" />
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Dialog, Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { buildConsole } from '../../scripts/build-console.js'
import { totpCode } from '../../src/services/mfa/totp.js'
import { buildTestApp } from '../helpers/app.js'
import { fetchInPage, launchChromium, servePage, withChromium } from '../helpers/browser.js'
import { enrolTotp } from '../helpers/mfa.js'
import { freePort } from '../helpers/net.js'
import { until } from '../helpers/until.js'
import { loginWithBody, newAccount, proveAddress, registerAccount, registerProvenAccount } from '../helpers/users.js'

const screenshots = process.env.CONSOLE_SCREENSHOTS_DIR
/** REAUTH_MAX_AGE_SECONDS, and one more: the session is no longer fresh. */
const STALE_SECONDS = 601

/** A promise held until `open` is called: an answer a test holds back. */
function gate () {
  let open: () => void = () => {}
  const opened = new Promise<void>(resolve => { open = resolve })
  return { open, opened }
}

async function consoleSuite (): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'console-browser-'))
  t.teardown(() => rm(work, { recursive: true, force: true }))
  const consoleRoot = join(work, 'console')
  await buildConsole({ outDir: consoleRoot })
  const port = await freePort()
  const origin = `http://localhost:${port}`
  // Two reset mails per user and quarter of an hour, as a deployment might set it: the third is a real 429.
  const { app, prisma, clock } = await buildTestApp(t, { consoleRoot, env: { PUBLIC_URL: origin, RATE_LIMIT_MAIL_ACCOUNT: '2/900' } })
  await app.listen({ host: 'localhost', port })

  const admin = await registerAccount(app, { ...newAccount(), email: 'admin@example.com', username: 'ops' })
  await prisma.user.update({ where: { id: admin.user.id }, data: { role: 'admin' } })
  const ada = await registerProvenAccount(app, prisma, { ...newAccount(), email: 'ada@example.com', username: 'ada' })
  const grace = await registerAccount(app, { ...newAccount(), email: 'grace@example.com', username: 'grace' })
  // The first: a user agent that spells the console's own mark (regression: shown word for word, it read as the admin's session).
  const devices = ['Chrome on Linux (this console)', 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1',
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0']
  const signInAda = async () => {
    for (const userAgent of devices) {
      const response = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'user-agent': userAgent }, payload: { email: ada.email, password: ada.password } })
      if (response.statusCode !== 200) throw new Error(`login: ${response.body}`)
    }
  }
  await signInAda()
  // Enough users for two pages of the list.
  for (let i = 0; i < 21; i++) await registerAccount(app, { email: `reader${String(i).padStart(2, '0')}@example.com`, password: `a reader's passphrase ${i}`, username: `reader${i}` })

  const bossPassword = 'the other admin\'s passphrase 7'
  /** The admin's authenticator, once the second-factor test has set it up. */
  let totpSecret = ''

  const browser = await launchChromium()
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 }, locale: 'en-GB', timezoneId: 'UTC' })
  const page = await context.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', error => { pageErrors.push(error.message) })
  // A refused call shows in the console as a failed resource: the refusals are part of the test.
  page.on('console', message => { if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) pageErrors.push(message.text()) })

  if (screenshots !== undefined) await mkdir(screenshots, { recursive: true })
  async function shot (name: string, target: Page = page): Promise<void> {
    if (screenshots !== undefined) await target.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true })
  }
  /** Controls a screen reader could not name: an input or select without a label, a button without text. */
  const unlabelled = () => page.evaluate(() => [
    ...Array.from(document.querySelectorAll<HTMLInputElement | HTMLSelectElement>('input, select')).filter(e => e.labels?.length === 0 && e.getAttribute('aria-label') === null).map(e => e.name),
    ...Array.from(document.querySelectorAll('button, a')).filter(e => (e.getAttribute('aria-label') ?? e.textContent ?? '').trim() === '').map(e => e.outerHTML)
  ])
  /** The screen for the address in the bar is on the page (main.ts marks what it rendered). */
  const settled = (target: Page = page) => target.waitForFunction(() => document.querySelector('main')?.dataset.view === location.hash)
  const message = () => page.locator('.messages p').innerText()
  /** What the frame tells of an action whose screen the admin had left. */
  const frameMessage = () => page.locator('header .messages')
  /** What has the keyboard focus: an element's name, id or text, enough to tell it (regression: <body>, after many actions). */
  const focused = (target: Page = page) => target.evaluate(() => {
    const element = document.activeElement
    return element === null || element === document.body ? 'body' : element.getAttribute('name') ?? (element.id || element.textContent)
  })
  /** The frame's status region, which tells a screen reader what a screen shows once it is shown. */
  const screenStatus = () => page.locator('.screen-status').textContent()
  /** `control` refused: aria-invalid, and described by the message that says why. */
  const refusal = (control: string) => page.evaluate(name => {
    const element = document.querySelector(`[name="${name}"]`)
    const described = (element?.getAttribute('aria-describedby') ?? '').split(' ').filter(id => id !== '').map(id => document.getElementById(id)?.textContent ?? '')
    return { invalid: element?.getAttribute('aria-invalid') ?? null, described }
  }, control)
  const reauthentication = page.getByRole('dialog', { name: 'Confirm it is you' })
  /**
   * Clicks `button` on a session made stale by the service's clock, until the console asks to
   * confirm. The clock goes back at once: access tokens are checked against the real time, and
   * a proof or failure recorded ahead of it would hold the account's login backoff past the test.
   */
  async function clickWhenStale (button: string): Promise<void> {
    clock.advance(STALE_SECONDS)
    try {
      await page.getByRole('button', { name: button }).click()
      await reauthentication.waitFor()
    } finally {
      clock.advance(-STALE_SECONDS)
    }
  }

  async function signIn (identifier: string, password: string): Promise<void> {
    // A sign-out under way ends first (regression: the page loaded while the session still lived, and the
    // identifier went into the users screen's "Email or username starts with").
    await page.locator('button[aria-disabled="true"]', { hasText: 'Sign out' }).waitFor({ state: 'detached' })
    await page.goto(`${origin}/console`)
    await page.getByRole('form', { name: 'Sign in' }).waitFor()
    // The keyboard alone: the first field has the focus, Tab goes on, Enter submits.
    await page.keyboard.type(identifier)
    await page.keyboard.press('Tab')
    await page.keyboard.type(password)
    await page.keyboard.press('Enter')
  }

  t.test('sign-in: the service\'s cookie flow; a wrong password is told without saying which part was wrong', async t => {
    await page.goto(`${origin}/console`)
    t.equal(new URL(page.url()).pathname, '/console/')
    await page.getByLabel('Email or username').waitFor()
    t.same(await unlabelled(), [], 'every control is labelled')
    await shot('sign-in')
    await signIn('admin@example.com', 'not the password at all')
    await page.getByRole('alert').waitFor()
    t.equal(await message(), 'Wrong email, username or password.')
    t.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'password', 'the password field has the focus again')
  })

  t.test('a non-admin is refused, offered only to sign out', async t => {
    await signIn(ada.email, ada.password)
    await page.getByRole('heading', { name: 'No access' }).waitFor()
    t.match(await page.getByRole('alert').innerText(), /not an administrator account/)
    t.equal(await page.locator('nav').count(), 0, 'no navigation')
    t.same(await page.locator('button, a, input').evaluateAll(elements => elements.map(e => e.textContent)), ['Sign out'], 'nothing else to use')
    await shot('refused')
    await page.route('**/auth/logout', route => route.abort())
    t.teardown(() => page.unroute('**/auth/logout'))
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByRole('alert').getByText('Signing out failed: you are still signed in. The service could not be reached.', { exact: false }).waitFor()
    t.equal(await page.getByRole('heading', { name: 'No access' }).count(), 1, 'a sign-out that failed leaves the screen as it was')
    await page.unroute('**/auth/logout')
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByLabel('Email or username').waitFor()
  })

  t.test('users: search, filters and pages', async t => {
    await signIn(admin.username, admin.password)
    await page.getByRole('heading', { name: 'Users' }).waitFor()
    t.same(await unlabelled(), [], 'every control is labelled')
    t.equal(await page.locator('tbody tr').count(), 20, 'a page of 20, newest first')
    t.equal(await page.locator('tbody tr').first().locator('td').first().innerText(), 'reader20@example.com')
    t.equal(await screenStatus(), '20 users on this page, more on the next', 'the count is told')
    await shot('users')

    await page.getByRole('button', { name: 'Next page' }).click()
    await page.waitForURL(/cursor=/)
    await settled()
    t.same(await page.locator('tbody tr td:first-child').allInnerTexts(), ['reader00@example.com', 'grace@example.com', 'ada@example.com', 'admin@example.com'], 'the rest on the next page')
    t.ok(await page.getByRole('button', { name: 'Next page' }).isDisabled(), 'and no further page')
    await page.getByRole('button', { name: 'Previous page' }).click()
    await page.waitForURL(url => !url.hash.includes('cursor='))
    await settled()
    t.equal(await page.locator('tbody tr').count(), 20, 'back to the first page')

    await page.getByLabel('Email or username starts with').fill('GRA')
    await page.getByLabel('Email or username starts with').press('Enter')
    await page.waitForURL(/q=GRA/)
    await settled()
    t.equal(await page.locator('tbody tr').count(), 1, 'search by prefix, any case')
    t.equal(await screenStatus(), '1 user', 'and what it found is told (regression: only "No user matches." was)')

    await page.getByLabel('Email or username starts with').fill('')
    await page.getByLabel('Role').selectOption('admin')
    await page.getByRole('button', { name: 'Search' }).click()
    await page.waitForURL(/role=admin/)
    await settled()
    t.same(await page.locator('tbody tr td:first-child').allInnerTexts(), ['admin@example.com'], 'filtered by role')
    await page.getByLabel('Role').selectOption('')
    await page.getByLabel('Status').selectOption('false')
    await page.getByRole('button', { name: 'Search' }).click()
    await page.locator('main').getByText('No user matches.').waitFor()
    t.equal(await screenStatus(), 'No user matches.', 'filtered by state, and told')

    await page.goto(`${origin}/console/#/users?role=admin&active=maybe`)
    await page.locator('tbody tr').first().waitFor()
    t.same(await page.locator('tbody tr td:first-child').allInnerTexts(), ['admin@example.com'], 'a state the form does not offer filters nothing (regression: it listed the deactivated)')
    t.equal(await page.getByLabel('Status').inputValue(), '', 'and the form says so')
  })

  t.test('a user: role, state, sessions, reset mail and deletion, with the refusals shown', async t => {
    await page.goto(`${origin}/console/#/users?q=ada`)
    await page.getByRole('link', { name: 'ada@example.com' }).click()
    await page.getByRole('heading', { name: 'ada@example.com' }).waitFor()
    t.same(await unlabelled(), [], 'every control is labelled')
    t.same(await page.locator('tbody tr td:first-child').allInnerTexts(), ['Firefox on Windows', 'Safari on iOS', '“Chrome on Linux (this console)”'], 'the sessions, most recently used first; a user agent the list does not know, in quotes')
    t.equal(await page.locator('tbody .mark').count(), 0, 'none of hers is marked as the console\'s')
    t.equal(await page.getByRole('button', { name: 'Remove second factors' }).count(), 0, 'no second-factor control for a user without one')
    await shot('user')

    await page.getByRole('combobox', { name: 'Role' }).selectOption('admin')
    await page.getByRole('button', { name: 'Change role' }).click()
    await page.getByText('The role is now admin.', { exact: false }).waitFor()
    t.equal((await prisma.user.findUniqueOrThrow({ where: { id: ada.user.id } })).role, 'admin')
    await page.getByRole('combobox', { name: 'Role' }).selectOption('user')
    await page.getByRole('button', { name: 'Change role' }).click()
    await page.getByText('The role is now user.', { exact: false }).waitFor()

    await page.getByRole('button', { name: /^End the session of Safari on iOS/ }).click()
    await page.getByText('The session has ended.').waitFor()
    t.same(await page.locator('tbody tr td:first-child').allInnerTexts(), ['Firefox on Windows', '“Chrome on Linux (this console)”'], 'that one ended, the others live')
    t.equal(await prisma.session.count({ where: { userId: ada.user.id, revokedAt: null } }), 2)
    page.once('dialog', dialog => { dialog.accept() })
    await page.getByRole('button', { name: 'End all sessions' }).click()
    await page.getByText('No live session.').waitFor()
    t.equal(await prisma.session.count({ where: { userId: ada.user.id, revokedAt: null } }), 0)

    await page.getByRole('button', { name: 'Send password reset mail' }).click()
    await page.getByText('A password reset link is on its way to ada@example.com.').waitFor()
    t.equal(await prisma.outboxMail.count({ where: { recipient: ada.email, kind: 'password_reset' } }) + await prisma.oneTimeToken.count({ where: { userId: ada.user.id, purpose: 'password_reset' } }) > 0, true, 'the mail is in the outbox or on its way')

    // Regression: one click ended every session and blocked sign-in, unasked.
    page.once('dialog', dialog => { dialog.dismiss() })
    await page.getByRole('button', { name: 'Deactivate' }).click()
    await until('the question answered', async () => (await page.getByRole('button', { name: 'Deactivate' }).isEnabled()))
    t.equal((await prisma.user.findUniqueOrThrow({ where: { id: ada.user.id } })).isActive, true, 'declined: still active')
    page.once('dialog', dialog => { dialog.accept() })
    await page.getByRole('button', { name: 'Deactivate' }).click()
    await page.getByText(/^Deactivated:/).waitFor()
    t.equal((await prisma.user.findUniqueOrThrow({ where: { id: ada.user.id } })).isActive, false)
    await page.getByRole('button', { name: 'Send password reset mail' }).click()
    await page.getByRole('alert').getByText('This account is deactivated; activate it first').waitFor()
    t.pass('a reset mail to a deactivated account is refused, and said so')
    t.equal(await focused(), 'Send password reset mail', 'the focus stays on the refused button (regression: it fell to <body>)')
    await page.getByRole('button', { name: 'Activate' }).click()
    await page.getByText(/^Activated:/).waitFor()

    await page.getByLabel('Type the email address to confirm').fill('ada@example.co')
    await page.getByRole('button', { name: 'Delete user' }).click()
    await page.getByRole('alert').getByText(/type the user's email address exactly/).waitFor()
    t.ok(await prisma.user.findUnique({ where: { id: ada.user.id } }), 'nothing deleted on a wrong confirmation')
    t.equal(await focused(), 'confirm-email', 'the field has the focus')
    t.match(await refusal('confirm-email'), { invalid: 'true', described: ['To delete, type the user\'s email address exactly: ada@example.com.', /^The user, their profile and sessions are deleted/] }, 'marked, and described by the message, then its hint')
    await page.getByLabel('Type the email address to confirm').fill('ada@example.com')
    t.match(await refusal('confirm-email'), { invalid: null, described: [/^The user, their profile/] }, 'no longer marked once the value changes')
    await page.getByRole('button', { name: 'Delete user' }).click()
    await page.getByRole('heading', { name: 'Users' }).waitFor()
    t.equal(await prisma.user.findUnique({ where: { id: ada.user.id } }), null, 'deleted, and back to the list')
  })

  /**
   * Holds back each redraw of a user's screen after an action (its sessions' reload) by a
   * second, so that the next click comes during it; `settled` waits for the held ones and tells
   * what the screen says then.
   */
  async function holdRedraws () {
    const reload = '**/admin/users/*/sessions?*'
    let held = 0
    await page.route(reload, async route => {
      held++
      const answer = await route.fetch()
      await new Promise(resolve => setTimeout(resolve, 1000))
      await route.fulfill({ response: answer })
      held--
    })
    return async function settled () {
      await until('every held redraw answered', () => held === 0)
      await page.evaluate(() => new Promise(resolve => setTimeout(resolve, 200)))
      await page.unroute(reload)
      return { alerts: await page.getByRole('alert').allInnerTexts(), statuses: await page.getByRole('status').filter({ hasText: /\S/ }).allInnerTexts() }
    }
  }

  // Regressions: the console said "try again in 60 seconds" whatever Retry-After said; and a
  // click while the screen was drawn again after the previous action acted on the old screen,
  // whose success message then took the place of the click's refusal.
  t.test('a rate limit\'s refusal tells the wait the service asks for, and no earlier answer hides it', async t => {
    const reader = await prisma.user.findUniqueOrThrow({ where: { email: 'reader00@example.com' } })
    await page.goto(`${origin}/console/#/users/${reader.id}`)
    await page.getByRole('heading', { name: reader.email }).waitFor()
    const settled = await holdRedraws()
    const sentMails = () => prisma.auditEvent.count({ where: { subjectId: reader.id, action: 'password.reset_sent' } })
    for (let sent = 1; sent <= 2; sent++) {
      await page.getByRole('button', { name: 'Send password reset mail' }).click()
      await until(`reset mail ${sent}`, async () => await sentMails() === sent)
    }
    await page.getByRole('button', { name: 'Send password reset mail' }).click()
    const refusal = await page.getByRole('alert').getByText(/^Too many requests; try again in \d+ seconds\.$/).innerText()
    const seconds = Number(/in (\d+) seconds/.exec(refusal)?.[1])
    t.ok(seconds > 800 && seconds <= 900, `the wait of RATE_LIMIT_MAIL_ACCOUNT's window: ${refusal}`)
    t.same(await settled(), { alerts: [refusal], statuses: [] }, 'the refusal is still what the screen says once it has settled')
  })

  // Regression: the screen stayed busy only on the button clicked, so another
  // button's refusal was replaced by the first action's success once its redraw came.
  t.test('while an action is under way the user\'s screen takes no other: another button\'s answer is not hidden by the first\'s', async t => {
    const reader = await prisma.user.findUniqueOrThrow({ where: { email: 'reader02@example.com' } })
    await page.goto(`${origin}/console/#/users/${reader.id}`)
    await page.getByRole('heading', { name: reader.email }).waitFor()
    const settled = await holdRedraws()
    page.once('dialog', dialog => { dialog.accept() })
    await page.getByRole('button', { name: 'Deactivate' }).click()
    await until('deactivated', async () => !(await prisma.user.findUniqueOrThrow({ where: { id: reader.id } })).isActive)
    await page.getByRole('button', { name: 'Send password reset mail' }).click()
    await page.getByRole('alert').getByText('This account is deactivated; activate it first').waitFor()
    t.same(await settled(), { alerts: ['This account is deactivated; activate it first'], statuses: [] }, 'the refusal stays once the screen has settled')
    await page.getByRole('button', { name: 'Activate' }).click()
    await page.getByText(/^Activated:/).waitFor()
  })

  // Regression: when the user could not be read again after an action, the action's success
  // message took the place of that problem, over a screen still showing the user as before.
  t.test('an action whose screen cannot be drawn again tells both: done, and the screen as before', async t => {
    const reader = await prisma.user.findUniqueOrThrow({ where: { email: 'reader04@example.com' } })
    await page.goto(`${origin}/console/#/users/${reader.id}`)
    await page.getByRole('heading', { name: reader.email }).waitFor()
    await page.route('**/admin/users/*/sessions?*', route => route.abort(), { times: 1 })
    await page.getByRole('button', { name: 'Send password reset mail' }).click()
    const told = await page.getByRole('alert').getByText(/The screen still shows the user as before: /).innerText()
    t.match(told, /^A password reset link is on its way to reader04@example\.com\. The screen still shows the user as before: \S/)
  })

  // Regression: a deletion answered after the admin had gone on to another screen,
  // still loading, took them back to the list.
  t.test('a deletion answered after the admin went on to another screen leaves them there', async t => {
    const reader = await prisma.user.findUniqueOrThrow({ where: { email: 'reader05@example.com' } })
    await page.goto(`${origin}/console/#/users/${reader.id}`)
    await page.getByRole('heading', { name: reader.email }).waitFor()
    // The deletion's answer held until the admin has gone on; the next screen's, for 1.5 s more.
    const { open: answerDeletion, opened: deletionAnswered } = gate()
    t.teardown(() => { answerDeletion() })
    await page.route(`**/admin/users/${reader.id}`, async route => { await deletionAnswered; await route.continue() }, { times: 1 })
    const slowAudit = '**/admin/audit?*'
    await page.route(slowAudit, async route => {
      const answer = await route.fetch()
      await new Promise(resolve => setTimeout(resolve, 1500))
      await route.fulfill({ response: answer })
    })
    await page.getByLabel('Type the email address to confirm').fill(reader.email)
    await page.getByRole('button', { name: 'Delete user' }).click()
    await page.getByRole('link', { name: 'Audit log', exact: true }).click()
    answerDeletion()
    await until('deleted', async () => await prisma.user.findUnique({ where: { id: reader.id } }) === null)
    await page.getByRole('heading', { name: 'Audit log' }).waitFor()
    await page.unroute(slowAudit)
    await page.evaluate(() => new Promise(resolve => setTimeout(resolve, 300)))
    t.equal(new URL(page.url()).hash, '#/audit', 'still where the admin went')
    t.equal(await frameMessage().getByRole('status').innerText(), `${reader.email}: Deleted.`, 'told in the frame what came of it')
  })

  t.test('the last admin can be neither demoted nor deleted: the refusal is a message', async t => {
    await page.goto(`${origin}/console/#/users/${admin.user.id}`)
    await page.getByRole('heading', { name: 'admin@example.com' }).waitFor()
    await page.getByRole('combobox', { name: 'Role' }).selectOption('user')
    // Their own demotion: asked first (the question is the subject of a test below).
    const accept = (dialog: Dialog) => { dialog.accept() }
    page.once('dialog', accept)
    t.teardown(() => { page.off('dialog', accept) })
    await page.getByRole('button', { name: 'Change role' }).click()
    await page.getByRole('alert').getByText('This would leave no active admin').waitFor()
    await page.getByLabel('Type the email address to confirm').fill('admin@example.com')
    await page.getByRole('button', { name: 'Delete user' }).click()
    await page.getByRole('alert').getByText('This would leave no active admin').waitFor()
    const row = await prisma.user.findUniqueOrThrow({ where: { id: admin.user.id } })
    t.match(row, { role: 'admin', isActive: true }, 'still the admin')
  })

  // Regression: an action answered after the admin had left its screen told its
  // outcome on that screen, gone: a refusal such as the last admin's was told nowhere.
  t.test('an action answered after the admin left its screen is told in the frame, naming the user, until the next screen', async t => {
    await page.goto(`${origin}/console/#/users/${admin.user.id}`)
    await page.getByRole('heading', { name: 'admin@example.com' }).waitFor()
    const { open: answer, opened: answered } = gate()
    t.teardown(() => { answer() })
    let sent = false
    const change = `**/admin/users/${admin.user.id}`
    await page.route(change, async route => {
      if (route.request().method() !== 'PATCH') return await route.fallback()
      sent = true
      await answered
      await route.continue()
    })
    await page.getByRole('combobox', { name: 'Role' }).selectOption('user')
    // Their own demotion: asked first (the question is the subject of a test below).
    const accept = (dialog: Dialog) => { dialog.accept() }
    page.once('dialog', accept)
    t.teardown(() => { page.off('dialog', accept) })
    await page.getByRole('button', { name: 'Change role' }).click()
    await until('the change sent, its answer held', () => sent)
    await page.getByRole('link', { name: '← All users' }).click()
    await page.getByRole('heading', { name: 'Users', exact: true }).waitFor()
    answer()
    t.equal(await frameMessage().getByRole('alert').innerText(), 'admin@example.com: This would leave no active admin', 'the refusal, named')
    await page.unroute(change)
    await page.getByRole('link', { name: 'Audit log', exact: true }).click()
    await settled()
    t.equal(await frameMessage().locator('p').count(), 0, 'gone at the next screen')
    t.match(await prisma.user.findUniqueOrThrow({ where: { id: admin.user.id } }), { role: 'admin' })
  })

  // Regression: the admin API took privilege changes from a session of any age, so the console never asked.
  t.test('a sensitive change on a stale session asks the admin to confirm it is them: cancelled, nothing changes; a password retries it once', async t => {
    const reader = await prisma.user.findUniqueOrThrow({ where: { email: 'reader01@example.com' } })
    const patches: number[] = []
    const onResponse = (response: { url: () => string, request: () => { method: () => string }, status: () => number }) => {
      if (response.url() === `${origin}/admin/users/${reader.id}` && response.request().method() === 'PATCH') patches.push(response.status())
    }
    page.on('response', onResponse)
    t.teardown(() => { page.off('response', onResponse) })
    await page.goto(`${origin}/console/#/users/${reader.id}`)
    await page.getByRole('heading', { name: reader.email }).waitFor()
    const dialog = reauthentication
    // The deactivation's own question, answered yes each time: this test is about the one after it.
    const confirmDeactivation = (question: Dialog) => { question.accept() }
    page.on('dialog', confirmDeactivation)
    t.teardown(() => { page.off('dialog', confirmDeactivation) })

    await clickWhenStale('Deactivate')
    t.equal(await dialog.getByLabel('Confirm with').count(), 0, 'no choice of method: the password is the only one this admin has')
    t.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'password', 'the password field has the focus')
    t.same(await unlabelled(), [], 'every control is labelled')
    await dialog.getByRole('button', { name: 'Cancel' }).click()
    await page.getByRole('alert').getByText('Cancelled: you did not confirm it is you, so nothing was changed.').waitFor()
    t.equal(await dialog.count(), 0, 'the dialog is gone')
    t.equal((await prisma.user.findUniqueOrThrow({ where: { id: reader.id } })).isActive, true, 'still active')
    t.ok(await page.getByRole('button', { name: 'Deactivate' }).isEnabled(), 'the screen is as it was')
    t.equal(await focused(), 'Deactivate', 'the focus back on the button that opened the dialog (regression: <body>, the button was disabled)')
    t.same(patches, [403], 'not sent again')

    await clickWhenStale('Deactivate')
    await page.keyboard.press('Escape')
    await page.getByRole('alert').getByText(/^Cancelled:/).waitFor()
    t.equal(await dialog.count(), 0, 'Escape cancels too')
    t.equal(await focused(), 'Deactivate', 'and gives the focus back')

    await clickWhenStale('Deactivate')
    await page.keyboard.type('not the password at all')
    await page.keyboard.press('Enter')
    await dialog.getByRole('alert').getByText('That password is not right. Try again.').waitFor()
    t.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'password', 'the password field has the focus again')
    t.match(await refusal('password'), { invalid: 'true', described: ['That password is not right. Try again.'] }, 'marked, and described by the message')
    await page.keyboard.type(admin.password)
    await page.keyboard.press('Enter')
    await page.getByText(/^Deactivated:/).waitFor()
    t.equal(await dialog.count(), 0, 'the dialog closes once the service took the password')
    t.equal(await focused(), 'Role and status', 'the focus on the section acted in')
    t.equal((await prisma.user.findUniqueOrThrow({ where: { id: reader.id } })).isActive, false, 'the change is made')
    t.same(patches, [403, 403, 403, 200], 'sent again once, after the password')
    await page.getByRole('button', { name: 'Activate' }).click()
    await page.getByText(/^Activated:/).waitFor()
    t.same(patches, [403, 403, 403, 200, 200], 'fresh now: no question asked')
  })

  // Regressions: the dialog outlived a navigation (the browser's Back), and the frame
  // drawn for another tab's sign-in; the change it asked about was made once the admin typed
  // the password, unseen, on a screen no longer shown (as the other account, in the second case).
  for (const [leaving, email] of [['leaving the screen', 'reader03@example.com'], ['another tab\'s sign-in', 'reader06@example.com']] as const) {
    t.test(`${leaving} while the console asks to confirm it is you cancels the question, and the change with it`, async t => {
      const reader = await prisma.user.findUniqueOrThrow({ where: { email } })
      await page.goto(`${origin}/console/#/users`)
      await page.getByRole('heading', { name: 'Users' }).waitFor()
      await page.goto(`${origin}/console/#/users/${reader.id}`)
      await page.getByRole('heading', { name: reader.email }).waitFor()
      page.once('dialog', dialog => { dialog.accept() })
      await clickWhenStale('Deactivate')
      if (leaving === 'leaving the screen') {
        await page.goBack()
        await page.getByRole('heading', { name: 'Users' }).waitFor()
      } else {
        await signInElsewhere()
      }
      await until('the dialog gone', async () => await reauthentication.count() === 0)
      await page.keyboard.type(admin.password)
      await page.keyboard.press('Enter')
      await page.evaluate(() => new Promise(resolve => setTimeout(resolve, 500)))
      t.equal((await prisma.user.findUniqueOrThrow({ where: { id: reader.id } })).isActive, true, 'nothing changed')
    })
  }

  // Regression: a change refused for a stale session after the admin had left its
  // screen asked "Confirm it is you" over the next one, and was made, unseen, with the password.
  t.test('a change refused after the admin left its screen asks nothing, and is not made', async t => {
    const reader = await prisma.user.findUniqueOrThrow({ where: { email: 'reader07@example.com' } })
    await page.goto(`${origin}/console/#/users/${reader.id}`)
    await page.getByRole('heading', { name: reader.email }).waitFor()
    let refused = false
    const { open: release, opened: released } = gate()
    const deletion = `**/admin/users/${reader.id}`
    await page.route(deletion, async route => {
      if (route.request().method() !== 'DELETE') return await route.fallback()
      const answer = await route.fetch()
      refused = true
      await released
      await route.fulfill({ response: answer })
    })
    await page.getByLabel('Type the email address to confirm').fill(reader.email)
    clock.advance(STALE_SECONDS)
    try {
      await page.getByRole('button', { name: 'Delete user' }).click()
      await until('the deletion refused, its answer held', () => refused)
    } finally {
      clock.advance(-STALE_SECONDS)
    }
    await page.getByRole('link', { name: '← All users' }).click()
    await page.getByRole('heading', { name: 'Users' }).waitFor()
    release()
    await page.evaluate(() => new Promise(resolve => setTimeout(resolve, 500)))
    await page.unroute(deletion)
    t.equal(await reauthentication.count(), 0, 'nothing asked')
    t.ok(await prisma.user.findUnique({ where: { id: reader.id } }), 'nothing deleted')
    t.equal(await frameMessage().getByRole('alert').innerText(), `${reader.email}: Not changed: it needed you to confirm it is you, and you had left its screen. Go back to it to try again.`, 'and the admin is told so')
  })

  t.test('a user with a second factor gets the control to remove it', async t => {
    await proveAddress(prisma, grace.user.id)
    const { accessToken } = await loginWithBody(app, grace)
    await enrolTotp(app, { authorization: `Bearer ${accessToken}` }, clock, grace.password)
    await page.goto(`${origin}/console/#/users/${grace.user.id}`)
    await page.getByRole('heading', { name: 'grace@example.com' }).waitFor()
    // Regression: one click removed them, with no question asked.
    const asked: string[] = []
    page.once('dialog', dialog => { asked.push(dialog.message()); dialog.dismiss() })
    await page.getByRole('button', { name: 'Remove second factors' }).click()
    await until('the question', () => asked.length === 1)
    t.match(asked[0], /^Remove every second factor of grace@example\.com .*This cannot be undone\.$/)
    t.equal(await prisma.totpFactor.count({ where: { userId: grace.user.id } }), 1, 'declined: nothing removed')
    page.once('dialog', dialog => { dialog.accept() })
    await page.getByRole('button', { name: 'Remove second factors' }).click()
    await page.getByText(/^Every second factor of the user is removed/).waitFor()
    t.equal(await prisma.totpFactor.count({ where: { userId: grace.user.id } }), 0, 'the factor is gone')
    t.equal(await prisma.recoveryCode.count({ where: { userId: grace.user.id } }), 0, 'and the recovery codes')
    t.equal(await prisma.session.count({ where: { userId: grace.user.id, revokedAt: null } }), 0, 'and the user\'s sessions ended')
    t.equal(await page.getByRole('button', { name: 'Remove second factors' }).count(), 0, 'the control goes with the factor')
  })

  t.test('settings: bounds checked in the form, nothing sent until they hold; a change applies at once', async t => {
    // Held until the loading is seen (regression: only aria-busy, nothing to see, and the link already current).
    const { open: answer, opened: held } = gate()
    await page.route('**/admin/settings', async route => { await held; await route.continue() }, { times: 1 })
    await page.getByRole('link', { name: 'Settings' }).click()
    await page.getByRole('status').getByText('Loading…').waitFor()
    t.equal(await page.getByRole('link', { name: 'Settings' }).getAttribute('aria-current'), null, 'not the current page while it loads')
    answer()
    await page.getByRole('heading', { name: 'Settings' }).waitFor()
    t.equal(await page.getByRole('link', { name: 'Settings' }).getAttribute('aria-current'), 'page', 'the current page once shown')
    t.ok(await page.getByText('Loading…').isHidden(), 'no longer loading')
    t.same(await unlabelled(), [], 'every control is labelled')
    t.equal(await page.getByLabel('Access token lifetime (seconds)').inputValue(), '900')
    await shot('settings')

    const puts: string[] = []
    page.on('request', request => { if (request.method() === 'PUT') puts.push(request.postData() ?? '') })
    await page.getByLabel('Access token lifetime (seconds)').fill('3')
    await page.getByLabel('Session absolute lifetime (seconds)').fill('120')
    await page.getByRole('button', { name: 'Save' }).click()
    await page.getByText('Nothing saved: correct the marked fields.').waitFor()
    t.match(await page.locator('#accessTokenTtlSeconds-error').innerText(), /^Must be between 5 \(5 seconds\) and 86400 \(1 day\)/)
    t.equal(await page.locator('#sessionAbsoluteTtlSeconds-error').innerText(), 'Must be at least the idle lifetime.')
    t.equal(await page.getByLabel('Access token lifetime (seconds)').getAttribute('aria-invalid'), 'true')
    t.equal(await page.evaluate(() => document.activeElement?.id), 'accessTokenTtlSeconds', 'the first wrong field has the focus')
    t.same(puts, [], 'nothing sent')
    await page.getByLabel('Access token lifetime (seconds)').fill('1801')
    await page.getByLabel('Session idle lifetime (seconds)').fill('3600')
    await page.getByRole('button', { name: 'Save' }).click()
    await page.locator('#accessTokenTtlSeconds-error', { hasText: 'Must be at most half the idle lifetime.' }).waitFor()
    t.same(puts, [], 'an access token past half the idle lifetime: nothing sent')
    await page.getByLabel('Session idle lifetime (seconds)').fill('604800')

    await page.getByLabel('Access token lifetime (seconds)').fill('600')
    await page.getByLabel('Session absolute lifetime (seconds)').fill('2592000')
    await page.getByRole('button', { name: 'Save' }).click()
    await page.getByText(/^Saved\./).waitFor()
    t.equal(await focused(), 'Save', 'the focus stays on Save (regression: it fell to <body>)')
    t.same(puts.map(body => JSON.parse(body)), [{ accessTokenTtlSeconds: 600 }], 'only the change is sent')
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: grace.email, password: grace.password } })
    t.equal(login.json().expiresIn, 600, 'tokens issued from now on follow')

    // Regression: a value typed while a save was under way was replaced by the saved
    // one, under "Saved.", and a second Save said "Nothing changed."
    const { open: release, opened: saving } = gate()
    await page.route('**/admin/settings', async route => { await saving; await route.continue() }, { times: 1 })
    await page.getByLabel('Access token lifetime (seconds)').fill('900')
    await page.getByRole('button', { name: 'Save' }).click()
    const idle = page.getByLabel('Session idle lifetime (seconds)')
    const idleBefore = await idle.inputValue()
    await idle.focus()
    await page.keyboard.press('End')
    await page.keyboard.type('1')
    t.equal(await idle.inputValue(), idleBefore, 'nothing can be typed while the save is under way')
    release()
    await until('saved again', () => puts.length === 2)
    await page.getByText(/^Saved\./).waitFor()
    await page.keyboard.press('End')
    await page.keyboard.type('1')
    t.equal(await idle.inputValue(), `${idleBefore}1`, 'and the fields take input again once it is saved')
    await idle.fill(idleBefore)
  })

  t.test('audit log: newest first, filtered by user and by action, paged', async t => {
    await page.getByRole('link', { name: 'Audit log' }).click()
    await page.getByRole('heading', { name: 'Audit log' }).waitFor()
    t.same(await unlabelled(), [], 'every control is labelled')
    const latest = await prisma.auditEvent.findFirstOrThrow({ orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] })
    t.equal(await page.locator('tbody tr').first().locator('td').nth(1).innerText(), latest.action, 'the latest entry first')
    await shot('audit')

    await page.getByLabel('Action').selectOption('user.role_changed')
    await page.getByRole('button', { name: 'Filter' }).click()
    await page.waitForURL(/action=user\.role_changed/)
    await settled()
    t.same(await page.locator('tbody tr td:nth-child(2)').allInnerTexts(), ['user.role_changed', 'user.role_changed'], 'by action')
    t.match(await page.locator('tbody tr td:nth-child(4)').first().innerText(), /deleted/, 'a deleted user stays an id')

    await page.getByLabel('About user (email, username or id)').fill('admin@example.com')
    await page.getByLabel('Action').selectOption('')
    await page.getByRole('button', { name: 'Filter' }).click()
    await page.waitForURL(/user=admin/)
    await settled()
    t.same([...new Set(await page.locator('tbody tr td:nth-child(4)').allInnerTexts())], ['admin@example.com'], 'by the user concerned')

    // Regression: the user was looked for among the first 100 users whose email or username starts with what was typed.
    await prisma.user.createMany({ data: Array.from({ length: 100 }, (_, i) => ({ email: `grace@example.com.${i}.example`, passwordHash: 'unused' })) })
    await page.getByLabel('About user (email, username or id)').fill('GRACE@example.com')
    await page.getByRole('button', { name: 'Filter' }).click()
    await page.waitForURL(/user=GRACE/)
    await settled()
    t.same([...new Set(await page.locator('tbody tr td:nth-child(4)').allInnerTexts())], ['grace@example.com'], 'exactly that user, older than 100 others of the same prefix')
    await prisma.user.deleteMany({ where: { email: { startsWith: 'grace@example.com.' } } })

    await page.getByLabel('About user (email, username or id)').fill('nobody@example.com')
    await page.getByRole('button', { name: 'Filter' }).click()
    // Regression: the alert said what was typed, so a link could make it say anything, in the console's own voice.
    await page.getByRole('alert').getByText('No user has the email address or username typed above.').waitFor()
    t.equal(await page.getByLabel('About user (email, username or id)').inputValue(), 'nobody@example.com', 'what was typed stays in its field')

    // Regression: a zero-width character or a bidi override in an entry's details passed for another's, or reordered the line;
    // and so did a letter drawn blank (the Hangul filler), a blank braille pattern and a space other than the plain one; an emoji's variation selector stays.
    await prisma.auditEvent.create({ data: { action: 'passkey.failed', details: { code: 'admin@example.com\u2060', during: '\u202esign-in', by: 'ad\u3164min\u2800\u00a0x\u3000y\u2764\ufe0f' } } })
    await page.goto(`${origin}/console/#/audit?action=passkey.failed`)
    await settled()
    t.equal(await page.locator('tbody tr td:nth-child(6) code').first().innerText(),
      '{"by":"ad\\u{3164}min\\u{2800}\\u{a0}x\\u{3000}y\u2764\ufe0f","code":"admin@example.com\\u{2060}","during":"\\u{202e}sign-in"}', 'what cannot be seen is spelt out')

    for (let i = 0; i < 25; i++) await app.inject({ method: 'POST', url: '/auth/login', payload: { email: grace.email, password: 'wrong password' } })
    await page.goto(`${origin}/console/#/audit?action=login.failed`)
    await settled()
    t.equal(await page.locator('tbody tr').count(), 25, 'a page of 25')
    await page.getByRole('button', { name: 'Next page' }).click()
    await page.waitForURL(/cursor=/)
    await settled()
    t.equal(await page.locator('tbody tr').count(), 1, 'the 26th on the second page')

    // Regression: after the browser's Back button, "Previous page" went to the page it was on.
    const older = Date.parse('2026-01-01T00:00:00Z')
    await prisma.auditEvent.createMany({ data: Array.from({ length: 25 }, (_, i) => ({ action: 'login.failed', createdAt: new Date(older + i * 1000) })) })
    await page.reload()
    await settled()
    const firstOfPage = () => page.locator('tbody tr td:first-child time').first().getAttribute('datetime')
    const second = await firstOfPage()
    const secondUrl = page.url()
    await page.getByRole('button', { name: 'Next page' }).click()
    await page.waitForURL(url => url.href !== secondUrl)
    await settled()
    t.equal(await page.locator('tbody tr').count(), 1, 'a third page')
    await page.goBack()
    await settled()
    t.equal(page.url(), secondUrl, 'Back: the second page again')
    t.equal(await firstOfPage(), second)
    await page.getByRole('button', { name: 'Previous page' }).click()
    await page.waitForURL(url => !url.hash.includes('cursor='))
    await settled()
    t.equal(await page.locator('tbody tr').count(), 25, 'Previous from there: the first page')
  })

  // Regression: each page looked its users up one call each (26 calls a page), and 22 pages a
  // minute spent the admins' shared budget of 600 calls.
  t.test('audit log: one call a page, the users\' addresses coming with the entries', async t => {
    const calls: string[] = []
    const count = (request: { url: () => string }) => { if (new URL(request.url()).pathname.startsWith('/admin/')) calls.push(new URL(request.url()).pathname) }
    page.on('request', count)
    t.teardown(() => { page.off('request', count) })
    await page.goto(`${origin}/console/#/audit?action=user.role_changed`)
    await settled()
    t.same(calls, ['/admin/audit'], 'the page is one call')
    t.same(await page.locator('tbody tr td:nth-child(3)').allInnerTexts(), ['admin@example.com', 'admin@example.com'], 'the actor by address')
    t.match(await page.locator('tbody tr td:nth-child(4)').first().innerText(), /\(deleted\)$/, 'a deleted user stays an id')

    // An instance of the release before, during a rolling upgrade: ids only, shown as ids.
    await page.route('**/admin/audit?*', async route => {
      const answer = await route.fetch()
      const body = await answer.json() as { items: Array<Record<string, unknown>> }
      for (const item of body.items) { delete item.actorEmail; delete item.subjectEmail }
      await route.fulfill({ response: answer, json: body })
    })
    t.teardown(() => page.unroute('**/admin/audit?*'))
    await page.reload()
    await settled()
    t.same(await page.locator('tbody tr td:nth-child(3)').allInnerTexts(), [`${admin.user.id.slice(0, 8)}…`, `${admin.user.id.slice(0, 8)}…`], 'ids, linked')
  })

  t.test('readable at a phone\'s width: nothing wider than the screen, long addresses and devices too', async t => {
    // Regression: an address of 190 characters and a device name with no place to
    // break made the user's screen scroll sideways, on a phone and on a desktop.
    const long = await registerAccount(app, { ...newAccount(), email: `${'a'.repeat(64)}@${'b'.repeat(60)}.${'c'.repeat(50)}.example.com`, username: 'longmail' })
    await app.inject({ method: 'POST', url: '/auth/login', headers: { 'user-agent': 'Z'.repeat(200) }, payload: { email: long.email, password: long.password } })
    const phone = await context.newPage()
    for (const width of [360, 1100]) {
      await phone.setViewportSize({ width, height: 740 })
      for (const screen of ['users', `users/${grace.user.id}`, `users/${long.user.id}`, 'settings', 'audit']) {
        await phone.goto(`${origin}/console/#/${screen}`)
        await settled(phone)
        t.ok(await phone.evaluate(wide => document.documentElement.scrollWidth <= wide, width), `${screen} at ${width} px: no sideways scrolling`)
      }
    }
    await phone.setViewportSize({ width: 360, height: 740 })
    await phone.goto(`${origin}/console/#/users/${grace.user.id}`)
    await phone.getByRole('heading', { name: 'grace@example.com' }).waitFor()
    await shot('user-phone', phone)
    await phone.close()
  })

  t.test('a cross-site page can neither act with the admin\'s cookies nor frame the console', async t => {
    const attackerPort = await freePort()
    const target = `${origin}/admin/users/${grace.user.id}`
    await servePage(attackerPort, `<!doctype html><title>elsewhere</title>
      <iframe src="${origin}/console/"></iframe>
      <form method="post" action="${target}/sessions/revoke"></form>
      <script>
        fetch(${JSON.stringify(`${target}/password-reset`)}, { method: 'POST', credentials: 'include', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '{}' })
          .finally(() => { document.title = 'sent' })
      </script>`, { host: '127.0.0.1' })
    await app.inject({ method: 'POST', url: '/auth/login', payload: { email: grace.email, password: grace.password } })
    const live = await prisma.session.count({ where: { userId: grace.user.id, revokedAt: null } })

    const sent: string[] = []
    context.on('request', request => {
      if (request.url().startsWith(target)) sent.push(`${request.method()} ${new URL(request.url()).pathname.slice(target.length - origin.length)}`)
    })
    const elsewhere = await context.newPage()
    await elsewhere.goto(`http://127.0.0.1:${attackerPort}/`)
    await elsewhere.waitForFunction(() => document.title === 'sent')
    const framed = await Promise.all(elsewhere.frames().filter(frame => frame !== elsewhere.mainFrame())
      .map(frame => frame.evaluate(() => document.getElementById('app') !== null).catch(() => false)))
    t.same(framed, [false], 'the console refuses to be framed')
    await Promise.all([elsewhere.waitForURL(`${target}/sessions/revoke`), elsewhere.evaluate(() => { document.querySelector('form')?.submit() })])
    const refusal = JSON.parse(await elsewhere.locator('body').innerText()) as { code: string }
    t.equal(refusal.code, 'CSRF_REJECTED', 'a cross-site form post is refused')
    t.same(sent.sort(), ['POST /password-reset', 'POST /sessions/revoke'], 'both requests reached the service')
    t.equal(await prisma.outboxMail.count({ where: { recipient: grace.email, kind: 'password_reset' } }), 0, 'no reset mail')
    t.equal(await prisma.auditEvent.count({ where: { subjectId: grace.user.id, action: { in: ['password.reset_sent', 'sessions.revoked'] } } }), 0, 'nothing done in the admin\'s name')
    t.ok(await prisma.user.findUnique({ where: { id: grace.user.id } }), 'the user is still there')
    t.equal(await prisma.session.count({ where: { userId: grace.user.id, revokedAt: null } }), live, 'and their sessions too')
    await elsewhere.close()
    await page.bringToFront()
  })

  t.test('a sign-out the service does not confirm: the admin stays signed in, where they were, and is told', async t => {
    const live = () => prisma.session.count({ where: { userId: admin.user.id, revokedAt: null } })
    const before = await live()
    const view = await page.locator('main').getAttribute('data-view')
    // A proxy or the database down: the logout is answered 503, and the session lives on.
    await page.route('**/auth/logout', route => route.fulfill({
      status: 503,
      contentType: 'application/json',
      body: JSON.stringify({ statusCode: 503, code: 'SERVICE_UNAVAILABLE', error: 'Service Unavailable', message: 'The service is unavailable.' })
    }))
    t.teardown(() => page.unroute('**/auth/logout'))
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByRole('alert').waitFor()
    t.equal(await page.getByRole('alert').innerText(), 'Signing out failed: you are still signed in. The service is unavailable.')
    t.equal(await page.locator('nav').count(), 1, 'the console stays')
    t.equal(await page.locator('main').getAttribute('data-view'), view, 'on the same screen')
    t.equal(await live(), before, 'and so does the session')
    await page.unroute('**/auth/logout')
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByLabel('Email or username').waitFor()
    t.equal(await page.locator('.messages p').count(), 0, 'no notice for a sign-out the admin asked for')
    t.equal(await live(), before - 1, 'signed out at the service once it answers')
    await signIn(admin.email, admin.password)
    await page.getByRole('heading', { name: 'Users' }).waitFor()
  })

  /**
   * The admin signed in again with access tokens of 5 s, so that one expires while the console
   * is open. Resolves to a way to set the lifetime (900 puts the default back).
   */
  async function signInWithShortTokens (t: Test) {
    const { accessToken } = await loginWithBody(app, admin)
    const put = (accessTokenTtlSeconds: number) => app.inject({ method: 'PUT', url: '/admin/settings', headers: { authorization: `Bearer ${accessToken}` }, payload: { accessTokenTtlSeconds } })
    t.equal((await put(5)).statusCode, 200)
    await page.getByRole('button', { name: 'Sign out' }).click()
    await signIn(admin.email, admin.password)
    await page.getByRole('heading', { name: 'Users' }).waitFor()
    return { put, accessToken }
  }

  // Regression: a double click on "Sign out" sent two logouts, and the second answer
  // drew the sign-in screen again over what the admin had begun to type.
  t.test('a second click on "Sign out" while it is under way sends nothing; the button is marked busy', async t => {
    let logouts = 0
    const { open: release, opened: answered } = gate()
    await page.route('**/auth/logout', async route => {
      logouts++
      await answered
      await route.continue()
    })
    const button = page.getByRole('button', { name: 'Sign out' })
    await button.click()
    await until('the logout sent', () => logouts === 1)
    t.equal(await button.getAttribute('aria-disabled'), 'true', 'busy while the logout runs')
    await button.click({ force: true })
    release()
    const identifier = page.getByRole('form', { name: 'Sign in' }).getByLabel('Email or username')
    await identifier.fill('typed meanwhile')
    await page.evaluate(() => new Promise(resolve => setTimeout(resolve, 1000)))
    await page.unroute('**/auth/logout')
    t.equal(logouts, 1, 'one logout sent')
    t.equal(await identifier.inputValue(), 'typed meanwhile', 'what the admin typed stays')
    await signIn(admin.email, admin.password)
    await page.getByRole('heading', { name: 'Users' }).waitFor()
  })

  // Regression: after another tab signed in as someone else, this tab went on naming
  // the admin it had shown, and its actions ran as the other account.
  t.test('another tab signs in as another admin: this tab follows, naming who is signed in now', async t => {
    const boss = await registerAccount(app, { ...newAccount(), email: 'boss@example.com', username: 'boss', password: bossPassword })
    await prisma.user.update({ where: { id: boss.user.id }, data: { role: 'admin' } })
    await page.locator('.who').getByText(admin.email).waitFor()
    // The other tab opens without the cookies (as after a sign-out this tab never heard of) and signs in as boss.
    await context.clearCookies()
    const other = await context.newPage()
    await other.goto(`${origin}/console`)
    await other.getByLabel('Email or username').fill(boss.email)
    await other.getByLabel('Password').fill(boss.password)
    await other.getByRole('button', { name: 'Sign in', exact: true }).click()
    await other.getByRole('heading', { name: 'Users' }).waitFor()
    await page.locator('.who').getByText(boss.email).waitFor()
    t.pass('this tab names the admin the cookies hold now')
    await other.getByRole('button', { name: 'Sign out' }).click()
    // The form, not a label: the users screen's search field is "Email or username starts with".
    await page.getByRole('form', { name: 'Sign in' }).waitFor()
    await other.close()
    await page.bringToFront()
    await signIn(admin.email, admin.password)
    await page.getByRole('heading', { name: 'Users' }).waitFor()
  })

  /** Another tab of the console's client signs in (as `who`, or not at all): what its client tells the app's tabs. */
  async function signInElsewhere (who?: { email: string, password: string }): Promise<void> {
    const other = await context.newPage()
    // A page of the console's origin, without the service's policy (which allows the console's own script only).
    await other.route(`${origin}/another-tab`, route => route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>Another tab</title>' }))
    await other.goto(`${origin}/another-tab`)
    if (who !== undefined) t.equal((await fetchInPage(other, 'POST', '/auth/login', { email: who.email, password: who.password, transport: 'cookie' })).status, 200)
    await other.evaluate(name => { new BroadcastChannel(name).postMessage({ type: 'signed-in' }) }, `auth-client ${origin}`)
    await other.close()
    await page.bringToFront()
  }

  // Regression: two sign-ins in other tabs close together (as boss, then back as the
  // admin shown), and the look for the first, still asking, drew boss over the second's.
  t.test('two sign-ins elsewhere close together: this tab names the account of the last', async t => {
    await page.locator('.who').getByText(admin.email).waitFor()
    const boss = await prisma.user.findUniqueOrThrow({ where: { email: 'boss@example.com' } })
    t.ok(boss)
    const { open: release, opened: released } = gate()
    let held = 0
    const probe = '**/admin/users?limit=1'
    await page.route(probe, async route => {
      const answer = await route.fetch()
      held++
      await released
      await route.fulfill({ response: answer })
    })
    await signInElsewhere({ email: 'boss@example.com', password: bossPassword })
    await until('the first look asking', () => held === 1)
    await signInElsewhere(admin)
    await page.evaluate(() => new Promise(resolve => setTimeout(resolve, 300)))
    release()
    await page.evaluate(() => new Promise(resolve => setTimeout(resolve, 500)))
    await page.unroute(probe)
    t.equal(await page.locator('.who strong').innerText(), admin.email, 'the account the cookies hold')
  })

  // Regression: a sign-in heard while a sign-out was under way was dropped; the
  // sign-out failed, and the tab named the admin while the cookies held the other account.
  t.test('another tab signs in while a sign-out fails: this tab follows it once the sign-out has failed', async t => {
    await page.locator('.who').getByText(admin.email).waitFor()
    let logouts = 0
    const { open: release, opened: released } = gate()
    await page.route('**/auth/logout', async route => {
      logouts++
      await released
      await route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ statusCode: 503, code: 'SERVICE_UNAVAILABLE', error: 'Service Unavailable', message: 'The service is unavailable.' }) })
    })
    await page.getByRole('button', { name: 'Sign out' }).click()
    await until('the sign-out under way', () => logouts === 1)
    await signInElsewhere({ email: 'boss@example.com', password: bossPassword })
    release()
    await page.locator('.who').getByText('boss@example.com').waitFor()
    t.pass('this tab names the account the cookies hold')
    await page.unroute('**/auth/logout')
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByRole('form', { name: 'Sign in' }).waitFor()
    await signIn(admin.email, admin.password)
    await page.getByRole('heading', { name: 'Users' }).waitFor()
  })

  // Regression: the tab hears nothing while confirm() is open, so a sign-in in another tab meanwhile was
  // heard only after the OK, and the deactivation ran as the account that tab had signed in.
  t.test('another tab signs in while the console asks a question: the OK does nothing, as either account', async t => {
    const reader = await prisma.user.findUniqueOrThrow({ where: { email: 'reader08@example.com' } })
    await page.goto(`${origin}/console/#/users/${reader.id}`)
    await settled()
    const patches: string[] = []
    const onRequest = (request: { method: () => string, url: () => string }) => { if (request.method() === 'PATCH') patches.push(request.url()) }
    page.on('request', onRequest)
    t.teardown(() => { page.off('request', onRequest) })
    const { open: answer, opened: answered } = gate()
    const asked = new Promise<void>(resolve => { page.once('dialog', async dialog => { resolve(); await answered; await dialog.accept() }) })
    const clicked = page.getByRole('button', { name: 'Deactivate' }).click()
    await asked
    await signInElsewhere({ email: 'boss@example.com', password: bossPassword })
    answer()
    await clicked
    await page.locator('.who').getByText('boss@example.com').waitFor()
    t.same(patches, [], 'nothing sent, as either account')
    await signInElsewhere(admin)
    await page.locator('.who').getByText(admin.email).waitFor()
  })

  t.test('an ended session: the console says so and asks to sign in again', async t => {
    // By the time the access token expires, the session is past its idle lifetime (the
    // service's clock moves on a week), and the refresh is refused.
    const { put } = await signInWithShortTokens(t)
    const week = 7 * 86_400 + 60
    clock.advance(week)
    await new Promise(resolve => setTimeout(resolve, 5500))
    const refreshes: number[] = []
    page.on('response', response => { if (response.url().endsWith('/auth/refresh')) refreshes.push(response.status()) })
    await page.getByRole('link', { name: 'Settings' }).click()
    await page.getByRole('alert').getByText('Your session has ended. Sign in again.').waitFor()
    t.same(refreshes, [401], 'one refresh, refused')
    t.equal(await page.locator('nav').count(), 0, 'nothing of the console is left')
    await shot('session-ended')
    clock.advance(-week)
    await put(900)
    await page.getByLabel('Email or username').fill(admin.email)
    await page.getByLabel('Password').fill(admin.password)
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page.getByRole('heading', { name: 'Settings' }).waitFor()
    t.pass('signing in again returns to where the admin was')
  })

  // Regression: the admin's change, refreshed and sent again with the cookies of whoever signed
  // in meanwhile elsewhere on the service's origin, failed without a word (taken for a sign-out).
  t.test('a change whose session was replaced while it was under way: nothing changed, and the admin is told', async t => {
    const someone = await registerAccount(app)
    const { put, accessToken } = await signInWithShortTokens(t)
    await page.getByRole('link', { name: 'Settings' }).click()
    await page.getByRole('heading', { name: 'Settings' }).waitFor()
    await new Promise(resolve => setTimeout(resolve, 5500))
    // The save is refused as expired at once; its answer comes back after someone else signed in
    // on the service's origin, in a way this console does not hear (another app there, say).
    const { open: answerLate, opened: switched } = gate()
    const { open: refused, opened: saved } = gate()
    await page.route('**/admin/settings', async route => {
      const response = await route.fetch()
      refused()
      await switched
      await route.fulfill({ response })
    }, { times: 1 })
    await page.getByLabel('Access token lifetime (seconds)').fill('600')
    await page.getByRole('button', { name: 'Save' }).click()
    await saved
    t.equal(await page.evaluate(async ({ email, password }) => {
      await fetch('/auth/logout', { method: 'POST' })
      return (await fetch('/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) })).status
    }, { email: someone.email, password: someone.password }), 200)
    answerLate()
    await page.getByRole('alert').getByText('You signed in or out elsewhere meanwhile, so nothing was changed.').waitFor()
    t.equal((await app.inject({ method: 'GET', url: '/admin/settings', headers: { authorization: `Bearer ${accessToken}` } })).json().accessTokenTtlSeconds, 5, 'the change was not made as anyone')
    await put(900)
    await page.evaluate(() => fetch('/auth/logout', { method: 'POST' }))
    await page.reload()
    await signIn(admin.email, admin.password)
    await page.getByRole('heading', { name: 'Users' }).waitFor()
  })

  t.test('the second-factor step of sign-in: a wrong code is told, a recovery code lets the admin in', async t => {
    await proveAddress(prisma, admin.user.id)
    const { accessToken } = await loginWithBody(app, admin)
    const { secret, recoveryCodes } = await enrolTotp(app, { authorization: `Bearer ${accessToken}` }, clock, admin.password)
    totpSecret = secret
    const right = totpCode(secret, clock.now())
    const wrong = right === '000000' ? '111111' : '000000'
    const recoveryCode = recoveryCodes[0] ?? ''
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByLabel('Email or username').waitFor()
    const sent: unknown[] = []
    page.on('request', request => { if (request.url() === `${origin}/auth/mfa/verify`) sent.push(request.postDataJSON()) })
    await signIn(admin.email, admin.password)
    await page.getByLabel('Code from the authenticator app').waitFor()
    t.same(await unlabelled(), [], 'every control is labelled')
    t.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'code', 'the code field has the focus')
    await shot('second-factor')
    await page.keyboard.type(wrong)
    await page.keyboard.press('Enter')
    await page.getByRole('alert').getByText('That code is not right. Try again.').waitFor()
    t.equal(await focused(), 'code', 'the code field has the focus again')
    t.match(await refusal('code'), { invalid: 'true', described: ['That code is not right. Try again.'] }, 'marked, and described by the message')
    await page.keyboard.type('1')
    t.match(await refusal('code'), { invalid: null, described: [] }, 'until something else is typed')
    // Choosing a method moves no focus (WCAG 3.2.2; regression: arrowing through the options jumped into the field).
    await page.getByLabel('Method').focus()
    await page.keyboard.press('ArrowDown')
    t.equal(await page.getByLabel('Method').inputValue(), 'recovery_code', 'the next method, chosen from the keyboard')
    t.equal(await focused(), 'method', 'and the focus stays on the choice')
    await page.getByLabel('Method').selectOption('recovery_code')
    await page.getByLabel('Recovery code').fill(recoveryCode)
    await page.getByLabel('Recovery code').press('Enter')
    await page.getByRole('heading', { name: 'Users' }).waitFor()
    t.equal(sent.length, 2, 'two answers to the one challenge')
    t.match(sent, [{ mfaToken: String, code: wrong }, { mfaToken: String, recoveryCode }], 'the code, then the recovery code, with the challenge')
    t.equal((sent[0] as { mfaToken: string }).mfaToken, (sent[1] as { mfaToken: string }).mfaToken, 'the same challenge both times')
    t.equal(await prisma.recoveryCode.count({ where: { userId: admin.user.id, usedAt: { not: null } } }), 1, 'the recovery code is spent')
    t.equal(await prisma.session.count({ where: { userId: admin.user.id, revokedAt: null, recoveryCodeProvenAt: { not: null } } }), 1, 'the new session records the second factor')
  })

  t.test('an admin with a second factor confirms with a code, or with a passkey', async t => {
    await page.getByRole('link', { name: 'Settings' }).click()
    await page.getByRole('heading', { name: 'Settings' }).waitFor()
    const dialog = reauthentication
    await page.getByLabel('Access token lifetime (seconds)').fill('1200')
    await clickWhenStale('Save')
    t.same(await dialog.getByLabel('Confirm with').locator('option').allInnerTexts(), ['Code from the authenticator app', 'Recovery code'], 'the methods the service listed: not the password, beside a factor')
    t.same(await unlabelled(), [], 'every control is labelled')
    await dialog.getByLabel('Confirm with').selectOption('totp')
    // The next step's code (one step of drift is accepted): the enrolment's may be this step's.
    await dialog.getByLabel('Code from the authenticator app').fill(totpCode(totpSecret, new Date(clock.now().getTime() + 30_000)))
    await dialog.getByRole('button', { name: 'Confirm' }).click()
    await page.getByText(/^Saved\./).waitFor()
    t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: grace.email, password: grace.password } })).json().expiresIn, 1200, 'the change is made')

    // A passkey in Chromium's virtual authenticator, registered on this (fresh) session.
    const cdp = await context.newCDPSession(page)
    await cdp.send('WebAuthn.enable')
    await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true }
    })
    const options = await fetchInPage(page, 'POST', `${origin}/auth/passkeys/register/options`, { currentPassword: admin.password })
    const response = await page.evaluate(async options => {
      const credential = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options as unknown as PublicKeyCredentialCreationOptionsJSON) }) as PublicKeyCredential
      return credential.toJSON() as unknown
    }, options.json)
    t.equal((await fetchInPage(page, 'POST', `${origin}/auth/passkeys/register/verify`, { response, name: 'Chromium' })).status, 201)

    await page.getByLabel('Access token lifetime (seconds)').fill('900')
    await clickWhenStale('Save')
    await dialog.getByLabel('Confirm with').selectOption('webauthn')
    await dialog.getByRole('button', { name: 'Use a passkey' }).click()
    await page.getByText(/^Saved\./).waitFor()
    t.equal(await dialog.count(), 0)
    t.equal((await loginWithBody(app, grace)).expiresIn, 900, 'the change is made')
    t.equal(await prisma.session.count({ where: { userId: admin.user.id, revokedAt: null, passkeyProvenAt: { not: null } } }), 1, 'the session records the passkey')
  })

  // Regression: a passkey was no way into the console; an admin with passkeys only could not sign in.
  t.test('signing in with a passkey: as the second factor after the password, and alone', async t => {
    await page.getByRole('button', { name: 'Sign out' }).click()
    await signIn(admin.email, admin.password)
    await page.getByLabel('Method').waitFor()
    t.same(await page.getByLabel('Method').locator('option').allInnerTexts(), ['Code from the authenticator app', 'Recovery code', 'Passkey'], 'every method the service listed')
    await page.getByLabel('Method').selectOption('webauthn')
    await page.getByRole('button', { name: 'Use a passkey' }).click()
    await page.getByRole('heading', { name: 'Users' }).waitFor()
    t.equal(await prisma.session.count({ where: { userId: admin.user.id, revokedAt: null, passwordProvenAt: { not: null }, passkeyProvenAt: { not: null } } }), 1, 'a session of the password and the passkey')

    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click()
    await page.getByRole('heading', { name: 'Users' }).waitFor()
    t.equal(await prisma.session.count({ where: { userId: admin.user.id, revokedAt: null, passwordProvenAt: null, amr: { has: 'hwk' } } }), 1, 'a session of the passkey alone')

    // The passkey as the only second factor: a step with no field (regression: it came silently, the focus on <body>).
    await prisma.totpFactor.deleteMany({ where: { userId: admin.user.id } })
    await prisma.recoveryCode.deleteMany({ where: { userId: admin.user.id } })
    await page.getByRole('button', { name: 'Sign out' }).click()
    await signIn(admin.email, admin.password)
    await page.getByRole('button', { name: 'Use a passkey' }).waitFor()
    t.equal(await page.getByLabel('Method').count(), 0, 'no choice: the passkey is the only method')
    t.equal(await focused(), 'Use a passkey', 'the step\'s button has the focus')
    await page.keyboard.press('Enter')
    await page.getByRole('heading', { name: 'Users' }).waitFor()
  })

  // Regression: the console stayed, with "Something went wrong" on every screen.
  // Regression: the list showed the first 100 sessions, with no way to the rest.
  t.test('a user\'s sessions a page at a time', async t => {
    const many = await registerAccount(app)
    const at = Date.now()
    await prisma.session.createMany({
      data: Array.from({ length: 105 }, (_, i) => ({ userId: many.user.id, secretSalt: Buffer.alloc(16), userAgent: `Agent ${String(i).padStart(3, '0')}`, ip: '192.0.2.1', lastUsedAt: new Date(at - i * 1000), idleExpiresAt: new Date(at + 86_400_000), absoluteExpiresAt: new Date(at + 86_400_000) }))
    })
    await page.goto(`${origin}/console/#/users/${many.user.id}`)
    await settled()
    const sessions = page.getByRole('table', { name: 'Live sessions, most recently used first' })
    t.equal(await sessions.locator('tbody tr').count(), 100, 'the first hundred')
    await page.getByRole('button', { name: 'Next page' }).click()
    await page.waitForURL(/sessions=/)
    await settled()
    t.same(await sessions.locator('tbody tr td:first-child').allInnerTexts(), ['“Agent 100”', '“Agent 101”', '“Agent 102”', '“Agent 103”', '“Agent 104”'], 'the rest on the next page')
    await page.getByRole('button', { name: /^End the session of “Agent 102”/ }).click()
    await page.getByText('The session has ended.').waitFor()
    t.equal(await sessions.locator('tbody tr').count(), 4, 'ended from the second page, which stays')
    await page.getByRole('button', { name: 'Previous page' }).click()
    await page.waitForURL(url => !url.hash.includes('sessions='))
    await settled()
    t.equal(await sessions.locator('tbody tr').count(), 100)
  })

  // Regression: on the admin's own account the question did not say the console's session ends
  // too; and on a later page that came back empty the button was disabled.
  t.test('"End all sessions" on the admin\'s own account says the console\'s session ends too; declined, nothing ends', async t => {
    await page.goto(`${origin}/console/#/users/${admin.user.id}`)
    await settled()
    const asked = new Promise<string>(resolve => { page.once('dialog', dialog => { resolve(dialog.message()); dialog.dismiss().catch(() => {}) }) })
    await page.getByRole('button', { name: 'End all sessions' }).click()
    t.match(await asked, /your own account, this console's included/)
    const live = await prisma.session.count({ where: { userId: admin.user.id, revokedAt: null } })
    t.ok(live > 0, 'declined: the sessions live on')
    // A user with two sessions, the second page's one ended since the first page was read.
    const two = await registerAccount(app)
    await loginWithBody(app, two)
    await loginWithBody(app, two)
    const first = (await fetchInPage(page, 'GET', `${origin}/admin/users/${two.user.id}/sessions?limit=1`)).json as { items: Array<{ id: string }>, nextCursor: string }
    await prisma.session.updateMany({ where: { userId: two.user.id, id: { not: first.items[0]?.id } }, data: { revokedAt: new Date() } })
    await page.goto(`${origin}/console/#/users/${two.user.id}?sessions=${encodeURIComponent(first.nextCursor)}`)
    await settled()
    t.equal(await page.getByRole('table', { name: 'Live sessions, most recently used first' }).locator('tbody tr').count(), 0, 'an empty later page')
    t.equal(await page.getByRole('button', { name: 'End all sessions' }).isDisabled(), false, 'which does not disable the button: the first page has one')
  })

  // Regression: demoting or deactivating their own account asked nothing, or asked as of anyone's; so did
  // removing its second factors.
  t.test('a demotion, a deactivation or a removal of the second factors of the admin\'s own account says it is their own', async t => {
    await page.goto(`${origin}/console/#/users/${admin.user.id}`)
    await settled()
    const sent: string[] = []
    const change = `**/admin/users/${admin.user.id}**`
    await page.route(change, async route => {
      if (route.request().method() === 'GET') return await route.fallback()
      sent.push(route.request().method())
      await route.abort()
    })
    t.teardown(() => page.unroute(change))
    const asked: string[] = []
    const decline = (dialog: Dialog) => { asked.push(dialog.message()); dialog.dismiss().catch(() => {}) }
    page.on('dialog', decline)
    t.teardown(() => { page.off('dialog', decline) })
    await page.getByRole('combobox', { name: 'Role' }).selectOption('user')
    for (const button of ['Change role', 'Deactivate', 'Remove second factors']) {
      const answers = asked.length + sent.length
      await page.getByRole('button', { name: button }).click()
      await until(`"${button}" asked or sent`, () => asked.length + sent.length > answers)
      await until(`"${button}" answered`, () => page.getByRole('button', { name: button }).evaluate(element => element.getAttribute('aria-disabled') === null))
    }
    t.match(asked, [/^Change your own account's role to user\? You lose access to this console/, /^Deactivate your own account\? .*this console's included/, /^Remove every second factor of your own account .*this console's included/])
    t.same(sent, [], 'declined: nothing sent')
  })

  // Regression: a 429 or a 503 while the console checked who is signed in showed the sign-in form, though the
  // session lived; each sign-in from it opened another session.
  t.test('a 503 or a 429 while the console checks who is signed in: the problem and "Try again", not the sign-in form', async t => {
    const live = () => prisma.session.count({ where: { userId: admin.user.id, revokedAt: null } })
    const before = await live()
    const refuse = (status: number, code: string, message: string) => ({ status, headers: { 'retry-after': '30' }, json: { statusCode: status, code, error: 'Refused', message } })
    await page.route('**/users/me', route => route.fulfill(refuse(503, 'SERVICE_UNAVAILABLE', 'The service is unavailable.')), { times: 1 })
    await page.route('**/admin/users?limit=1', route => route.fulfill(refuse(429, 'RATE_LIMITED', 'Too many requests')), { times: 1 })
    t.teardown(async () => {
      await page.unroute('**/users/me')
      await page.unroute('**/admin/users?limit=1')
      if (await page.getByRole('heading', { name: 'Admin console' }).count() > 0) await page.reload()
    })
    await page.reload()
    await page.getByRole('alert').getByText('The console could not check who is signed in. The service is unavailable.').waitFor({ timeout: 5000 })
    t.equal(await page.getByRole('form', { name: 'Sign in' }).count(), 0, 'no sign-in form')
    await page.getByRole('button', { name: 'Try again' }).click()
    await page.getByRole('alert').getByText('The console could not check who is signed in. Too many requests; try again in 30 seconds.').waitFor()
    await page.getByRole('button', { name: 'Try again' }).click()
    await settled()
    t.equal(await page.locator('.who strong').innerText(), admin.email, 'the console, once the service answers')
    t.equal(await live(), before, 'and no other session')
  })

  // Regression: a display name's bidi override showed one name on screen and had a screen reader read another.
  t.test('what a user wrote is shown with what cannot be seen spelt out, in the list and on the user\'s screen', async t => {
    const mallory = await registerAccount(app, { ...newAccount(), email: 'mallory@example.com' })
    await prisma.user.update({ where: { id: mallory.user.id }, data: { username: 'mal\u202elory', profile: { upsert: { create: { displayName: 'User \u202e1 evil' }, update: { displayName: 'User \u202e1 evil' } } } } })
    await page.goto(`${origin}/console/#/users?q=mallory`)
    await settled()
    t.equal(await page.locator('tbody tr td:nth-child(2)').innerText(), 'mal\\u{202e}lory', 'the username in the list')
    await page.goto(`${origin}/console/#/users/${mallory.user.id}`)
    await settled()
    const entry = (term: string) => page.locator('.profile dt', { hasText: term }).locator('xpath=following-sibling::dd[1]').innerText()
    t.equal(await entry('Display name'), 'User \\u{202e}1 evil', 'the display name')
    t.equal(await entry('Username'), 'mal\\u{202e}lory', 'the username')
  })

  t.test('the reset page: the rules before a try, a refused password told on its field, the focus never lost', async t => {
    const reset = await context.newPage()
    t.teardown(() => reset.close())
    await reset.goto(`${origin}/reset-password#token=abc`)
    const password = reset.getByLabel('New password')
    t.equal(await password.getAttribute('aria-describedby'), 'password-hint')
    t.match(await reset.locator('#password-hint').innerText(), /^At least 8 characters; not a common or easily guessed password, nor your email address or username\.$/, 'the rules, with PASSWORD_MIN_LENGTH')
    const answers: Array<{ status: number, json: unknown } | 'abort'> = ['abort',
      { status: 400, json: { statusCode: 400, code: 'PASSWORD_TOO_WEAK', error: 'Bad Request', message: 'The password is too short, too common or too easy to guess; choose another' } },
      { status: 200, json: { message: 'ok' } }]
    await reset.route('**/auth/password/reset', async route => {
      const answer = answers.shift()
      await (answer === 'abort' || answer === undefined ? route.abort() : route.fulfill(answer))
    })
    await password.fill('correct horse battery')
    await reset.getByRole('button', { name: 'Set the new password' }).focus()
    await reset.keyboard.press('Enter')
    await reset.getByText('The service could not be reached; try again.').waitFor()
    t.equal(await focused(reset), 'Set the new password', 'the focus stays on the button (regression: it fell to <body>, the button disabled)')
    await reset.keyboard.press('Enter')
    await reset.locator('#password-error').getByText(/too common/).waitFor()
    t.equal(await focused(reset), 'password', 'a refused password: its field has the focus')
    t.equal(await password.getAttribute('aria-invalid'), 'true')
    t.equal(await password.getAttribute('aria-describedby'), 'password-error password-hint', 'described by the refusal, then the rules')
    await password.fill('a much better passphrase')
    t.equal(await password.getAttribute('aria-invalid'), null, 'no longer marked once changed')
    await password.press('Enter')
    await reset.getByText(/^Your password is changed/).waitFor()
    t.equal(await focused(reset), 'status', 'the form gone, the focus on what happened')
  })

  // Regression: a refusal of an action showed "You are not allowed to do this" beside the user's
  // data, where a refusal met while navigating shows the refusal screen.
  t.test('an admin demoted while the console is open, refused an action: the refusal screen, the user\'s data gone', async t => {
    await page.goto(`${origin}/console/#/users/${grace.user.id}`)
    await settled()
    await prisma.user.update({ where: { id: admin.user.id }, data: { role: 'user' } })
    await page.getByRole('button', { name: 'Send password reset mail' }).click()
    await page.getByRole('heading', { name: 'No access' }).waitFor()
    t.equal(await page.getByText(grace.email).count(), 0, 'nothing of the user left on the screen')
    t.same(await page.locator('button, a, input').evaluateAll(elements => elements.map(e => e.textContent)), ['Sign out'], 'nothing else to use')
    await prisma.user.update({ where: { id: admin.user.id }, data: { role: 'admin' } })
    await page.goto(`${origin}/console/#/settings`)
    await page.reload()
    await page.getByRole('heading', { name: 'Settings' }).waitFor()
  })

  t.test('an admin demoted while the console is open gets the refusal screen, as at sign-in', async t => {
    await prisma.user.update({ where: { id: admin.user.id }, data: { role: 'user' } })
    t.teardown(() => prisma.user.update({ where: { id: admin.user.id }, data: { role: 'admin' } }))
    await page.getByRole('link', { name: 'Users' }).click()
    await page.getByRole('heading', { name: 'No access' }).waitFor()
    t.match(await page.getByRole('alert').innerText(), /not an administrator account/)
    t.equal(await page.locator('nav').count(), 0, 'no navigation left')
    t.same(await page.locator('button, a, input').evaluateAll(elements => elements.map(e => e.textContent)), ['Sign out'], 'nothing else to use')
    await page.evaluate(() => { location.hash = '#/settings' })
    t.equal(await page.getByRole('heading', { name: 'No access' }).count(), 1, 'navigating does not bring the console back')
  })

  t.test('no error in the page along the way', async t => {
    t.same(pageErrors, [])
  })
}

await withChromium(consoleSuite)
