// The console's entry: who is signed in, the frame around the screens, and the route from the address's hash to a screen.
import { createAuthClient, isAuthError } from '../../packages/client/src/index.js'
import { adminApi, isSignedOut, problemOf } from './api.js'
import { reauthenticationPrompt } from './reauthentication.js'
import type { Context, Screen } from './context.js'
import { h, messageArea, whileBusy, type MessageArea } from './dom.js'
import { auditScreen } from './screens/audit.js'
import { settingsScreen } from './screens/settings.js'
import { checkFailedScreen, refusalScreen, signInScreen } from './screens/sign-in.js'
import { userScreen } from './screens/user.js'
import { usersScreen } from './screens/users.js'
import './style.css'

// The console is served by the service it administers: same origin, cookies only.
const client = createAuthClient({ baseUrl: location.origin })
const api = adminApi(client, { confirmIdentity: reauthenticationPrompt(client) })
const app = document.getElementById('app') as HTMLElement
let signedIn = false
// The session's end that a sign-out brings is shown by signOut, once the service confirms it.
let signingOut = false
// The account the frame names, while it is shown.
let shownAdminId: string | undefined
// Another tab signed in while this one was signing out: followed if the sign-out fails.
let signedInDuringSignOut = false
// The latest look at who is signed in: an earlier one still under way must not draw over it.
let entering = 0
// A navigation started while another screen was loading wins.
let rendering = 0
// Sign-ins heard from other tabs: a question answered while one waited is not acted on.
let signInsHeard = 0

function show (element: HTMLElement, title: string): void {
  app.replaceChildren(element)
  document.title = `${title} · Admin console`
  const target = element.querySelector('input') ?? element.querySelector('h1')
  target?.focus()
}

function showSignIn (notice?: string): void {
  signedIn = false
  show(signInScreen({ client, ...(notice === undefined ? {} : { notice }), onSignedIn: () => { enter() } }), 'Sign in')
}

/**
 * The sign-in screen once the service has ended the session. Until then the session lives
 * (a reload would reopen the console), so a failure leaves the admin where they are, told so.
 */
async function signOut (messages: MessageArea, button: HTMLButtonElement): Promise<void> {
  // One at a time, the button marked busy: a second click sent a second logout, whose answer
  // drew the sign-in screen again over what the admin had begun to type.
  if (signingOut) return
  messages.clear()
  signingOut = true
  signedInDuringSignOut = false
  try {
    await whileBusy(button, () => client.logout())
  } catch (error) {
    messages.show(`Signing out failed: you are still signed in. ${problemOf(error)}`, 'error')
    // The cookies may hold the other tab's session now.
    if (signedInDuringSignOut) enter(true, true)
    return
  } finally {
    signingOut = false
  }
  showSignIn()
}

// The session ended while the console was open (revoked, expired, signed out in another tab).
client.onSessionEnd(event => {
  if (!signedIn || signingOut) return
  showSignIn(event.reason === 'logout' ? 'You signed out.' : 'Your session has ended. Sign in again.')
})

// Another tab signed in: the cookies hold its session now, perhaps another account's, and every
// call from here runs as it (regression: this tab went on naming the admin it had shown). Shown
// afresh, unless it is the admin already shown.
client.onSignIn(() => {
  signInsHeard++
  if (signingOut) signedInDuringSignOut = true
  else enter(true, true)
})

/** The admin API's refusal of this account: FORBIDDEN (not an admin, or no longer) or MFA_ENROLMENT_REQUIRED. */
const isRefusal = (error: unknown): boolean => isAuthError(error, 'FORBIDDEN') || isAuthError(error, 'MFA_ENROLMENT_REQUIRED')

/** Told why, offered nothing but signing out; the frame and its screens are gone. */
function showRefusal (email: string, error: unknown): void {
  signedIn = false
  show(refusalScreen(email, isAuthError(error, 'FORBIDDEN') ? 'not-admin' : 'needs-mfa', (messages, button) => { signOut(messages, button) }), 'No access')
}

/**
 * Who is signed in could not be checked (a 429, a 503, no connection): the session may well
 * live, so not the sign-in form (regression: each sign-in from it opened another session).
 */
function showCheckFailed (error: unknown): void {
  signedIn = false
  show(checkFailedScreen(problemOf(error), button => { whileBusy(button, () => enter()) }), 'Not available')
}

/**
 * Signed in: the admin API decides whether this account may use the console. `elsewhere`:
 * another tab signed in, and the frame already shown for that account stays as it is.
 */
async function enter (again = true, elsewhere = false): Promise<void> {
  // Only the latest look draws: two sign-ins elsewhere close together made an earlier one, still
  // asking, draw the account before the last over it.
  const mine = ++entering
  const outdated = () => mine !== entering
  let me
  try {
    me = await client.me()
  } catch (error) {
    if (outdated()) return
    // Signed in or out elsewhere while this asked: ask once more, of whoever the cookies hold now.
    if (again && isAuthError(error, 'SESSION_CHANGED')) return await enter(false, elsewhere)
    if (isAuthError(error) && error.status === 401) showSignIn()
    else showCheckFailed(error)
    return
  }
  if (outdated() || (elsewhere && signedIn && me.id === shownAdminId)) return
  try {
    await api.users({ limit: 1 })
  } catch (error) {
    if (outdated()) return
    if (isRefusal(error)) {
      showRefusal(me.email, error)
      return
    }
    if (isAuthError(error) && error.status === 401) showSignIn(problemOf(error))
    else showCheckFailed(error)
    return
  }
  if (outdated()) return
  signedIn = true
  frame(me.email, me.id)
}

const links: Array<[string, string]> = [['#/users', 'Users'], ['#/audit', 'Audit log'], ['#/settings', 'Settings']]

/** The nav's link to the screen at `path` is the current page. */
function markCurrent (nav: HTMLElement, path: string): void {
  for (const link of nav.querySelectorAll('a')) {
    if (path.startsWith(link.getAttribute('href')?.slice(1) ?? '-')) link.setAttribute('aria-current', 'page')
    else link.removeAttribute('aria-current')
  }
}

/**
 * The frame's status region, there from the start so that a screen reader hears each change:
 * "Loading…", shown while a screen loads, then what the screen tells (style.css hides that: the
 * screen shows it its own way).
 */
function statusRegion () {
  const element = h('p', { class: 'screen-status', role: 'status' })
  return {
    element,
    tell (text: string, loading = false): void {
      element.classList.toggle('loading', loading)
      element.textContent = text
    }
  }
}

function frame (email: string, meId: string): void {
  shownAdminId = meId
  const nav = h('nav', { 'aria-label': 'Console' }, h('ul', {}, links.map(([href, label]) => h('li', {}, h('a', { href }, label)))))
  const main = h('main', { id: 'main' })
  const messages = messageArea()
  const status = statusRegion()
  const header = h('header', { class: 'bar' },
    h('p', { class: 'brand' }, 'Admin console'),
    nav,
    h('p', { class: 'who' }, 'Signed in as ', h('strong', {}, email)),
    h('button', { type: 'button', class: 'secondary', onclick: event => { signOut(messages, event.currentTarget as HTMLButtonElement) } }, 'Sign out'),
    messages.element,
    status.element
  )
  app.replaceChildren(header, main)

  function endsScreen (error: unknown): boolean {
    if (isSignedOut(error)) return true
    if (!isRefusal(error)) return false
    showRefusal(email, error)
    return true
  }

  async function ask (question: string): Promise<boolean> {
    const heard = signInsHeard
    const yes = confirm(question)
    // A task's time: what waited behind the question (another tab's sign-in, the session's end) is heard.
    await new Promise(resolve => setTimeout(resolve, 0))
    if (signInsHeard === heard) return yes
    // The screen is drawn anew for the account signed in; the same admin keeps it, and is told.
    if (yes) messages.show('Nothing was done: another tab signed in while the console asked. Try again.', 'error')
    return false
  }

  async function route (): Promise<void> {
    if (!signedIn) return
    const token = ++rendering
    const [path = '', query = ''] = location.hash.slice(1).split('?')
    const context: Context = { api, meId, params: new URLSearchParams(query), navigate: hash => { location.hash = hash }, endsScreen, tellElsewhere: messages.show, ask }
    // What the frame told of a screen left before is old news on the next.
    messages.clear()
    main.setAttribute('aria-busy', 'true')
    status.tell('Loading…', true)
    let screen: Screen
    try {
      screen = await screenFor(path, context)
    } catch (error) {
      if (!signedIn) return
      // Demoted, or their factor removed, while the console was open: the same screen as at sign-in.
      if (isRefusal(error)) {
        showRefusal(email, error)
        return
      }
      screen = { title: 'Error', element: h('section', {}, h('h1', { tabindex: '-1' }, 'Something went wrong'), h('p', { role: 'alert' }, problemOf(error))) }
    }
    if (token !== rendering || !signedIn) return
    main.removeAttribute('aria-busy')
    main.replaceChildren(screen.element)
    // The link says "current page" once its page is the one shown, not while it loads.
    markCurrent(nav, path)
    // Which address the screen shows: tests wait for it to match the address bar.
    main.dataset.view = `#${path}${query === '' ? '' : `?${query}`}`
    document.title = `${screen.title} · Admin console`
    screen.element.querySelector<HTMLElement>('h1')?.focus()
    status.tell(screen.status ?? '')
  }

  window.onhashchange = () => { route() }
  if (!location.hash.startsWith('#/')) history.replaceState(null, '', '#/users')
  route()
}

function screenFor (path: string, context: Context): Promise<Screen> {
  const user = /^\/users\/([^/]+)$/.exec(path)
  if (user?.[1] !== undefined) return userScreen(context, decodeURIComponent(user[1]))
  if (path === '/users') return usersScreen(context)
  if (path === '/audit') return auditScreen(context)
  if (path === '/settings') return settingsScreen(context)
  return Promise.resolve({ title: 'Not found', element: h('section', {}, h('h1', { tabindex: '-1' }, 'Not found'), h('p', {}, h('a', { href: '#/users' }, 'Back to the users'))) })
}

enter()
