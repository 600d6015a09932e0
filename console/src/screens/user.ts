// One user: profile, role, state, sessions, reset mail, second factors, deletion; refusals (the last admin) shown as messages.
import { problemOf, type Sessions, type User } from '../api.js'
import { hashOf, pager, type Context, type Screen } from '../context.js'
import { field, h, markInvalid, messageArea, option, table, whileBusy, type Child } from '../dom.js'
import { dateTime, device, visible } from '../format.js'
import { isAdministrative, roles, type Role } from '../../../src/services/accounts/roles.js'

function profile (user: User): HTMLElement {
  const entries: Array<[string, Child]> = [
    ['Email', user.email],
    ['Pending email', user.pendingEmail ?? null],
    // What the user wrote, with what cannot be seen spelt out (format.ts): a bidi override
    // would show one name and have a screen reader read another.
    ['Username', user.username === null ? '—' : visible(user.username)],
    ['Display name', user.profile.displayName === null ? '—' : visible(user.profile.displayName)],
    ['Role', user.role],
    ['Status', user.isActive ? 'Active' : 'Deactivated'],
    ['Email verified', user.emailVerified ? 'Yes' : 'No'],
    ['Second factor', user.mfaEnabled === undefined ? null : user.mfaEnabled ? 'Set up' : 'None'],
    ['Created', dateTime(user.createdAt)],
    ['Updated', dateTime(user.updatedAt)],
    ['Id', h('code', {}, user.id)]
  ]
  return h('dl', { class: 'profile' }, entries.filter(([, value]) => value !== null).flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]))
}

function section (title: string, ...children: Child[]): HTMLElement {
  return h('section', { class: 'panel' }, h('h2', { tabindex: '-1' }, title), ...children)
}

export async function userScreen ({ api, meId, params, navigate, endsScreen, tellElsewhere, ask }: Context, id: string): Promise<Screen> {
  // The page of sessions shown: the first, or the one a "Next page" opened.
  const sessionsCursor = params.get('sessions') ?? undefined
  const address = location.hash
  const [first, firstSessions] = await Promise.all([api.user(id), api.sessions(id, sessionsCursor)])
  const messages = messageArea()
  const body = h('div', {})
  const heading = h('h1', { tabindex: '-1' }, first.email)

  /** This screen is the one shown, at its address: the admin may have gone on, the next screen perhaps still loading. */
  const shown = () => body.isConnected && location.hash === address

  /**
   * Asks `question`: yes, with this screen still the one shown for the admin who was asked (no
   * other tab signed in, the session did not end, the admin did not go on meanwhile).
   */
  const agreed = async (question: string): Promise<boolean> => await ask(question) && shown()

  /** An action's outcome, on this screen while it is shown, else in the frame, naming the user. */
  function tell (text: string, kind: 'ok' | 'error' = 'ok'): void {
    if (shown()) messages.show(text, kind)
    else tellElsewhere(`${heading.textContent ?? first.email}: ${text}`, kind)
  }

  /**
   * Runs an admin action, shows the user as it now is, then tells the outcome (so the message
   * comes once the screen is settled); `focus` names the section to return to. A refusal
   * changed nothing: the screen stays as it is, with what the admin typed, the focus on `button`.
   */
  async function act (button: HTMLButtonElement, focus: string, action: () => Promise<string | undefined>): Promise<void> {
    messages.clear()
    // The whole screen busy until it is drawn again: a click on the old screen meanwhile acted,
    // and this action's message then took the place of that click's answer.
    await whileBusy(button, async () => {
      let done: string | undefined
      try {
        done = await action()
      } catch (error) {
        if (!endsScreen(error)) tell(problemOf(error), 'error')
        return
      }
      await redraw(focus, done)
    }, body)
  }

  /**
   * Draws the user as they now are, then tells `done`. When they cannot be read again, both are
   * told: the action was made, and the screen still shows the user as before (the success
   * message took the place of that problem). Once the admin has left, only `done` is told, in the frame.
   */
  async function redraw (focus: string, done: string | undefined): Promise<void> {
    let reloaded: [User, Sessions] | undefined
    let failure: unknown
    try {
      if (shown()) reloaded = await Promise.all([api.user(id), api.sessions(id, sessionsCursor)])
    } catch (error) {
      failure = error
    }
    // Left meanwhile: the outcome is told in the frame, and this screen is drawn no more.
    if (!shown()) {
      if (done !== undefined) tell(done)
      return
    }
    if (reloaded === undefined) {
      if (!endsScreen(failure)) messages.show(`${done === undefined ? '' : `${done} `}The screen still shows the user as before: ${problemOf(failure)}`, 'error')
      return
    }
    render(...reloaded)
    // A section that went with the change (the second factor's) leaves the screen's heading.
    const target = Array.from(body.querySelectorAll('h2')).find(h2 => h2.textContent === focus) ?? heading
    target.focus()
    if (done !== undefined) messages.show(done)
  }

  function render (user: User, sessions: Sessions): void {
    heading.textContent = user.email
    // The admin's own account: each question that could lock them out says so.
    const own = user.id === meId
    const role = h('select', { name: 'role' }, roles.map(name => option(name, name, user.role === name)))
    const roleButton = h('button', { type: 'submit' }, 'Change role')
    const roleForm = h('form', { class: 'inline', 'aria-label': 'Role' }, field('Role', role), roleButton)
    roleForm.addEventListener('submit', async event => {
      event.preventDefault()
      // Regression: an admin demoted their own account unasked, and lost the console at once.
      if (own && role.value !== user.role && !isAdministrative(role.value) && !await agreed(`Change your own account's role to ${role.value}? You lose access to this console at once, and only another admin can give it back.`)) return
      act(roleButton, 'Role and status', async () => {
        if (role.value === user.role) return 'The role is unchanged.'
        await api.update(id, { role: role.value as Role })
        return `The role is now ${role.value}. It reaches the user's access token at its next refresh.`
      })
    })
    const toggle = h('button', { type: 'button', class: user.isActive ? 'danger' : '' }, user.isActive ? 'Deactivate' : 'Activate')
    toggle.addEventListener('click', async () => {
      const question = own
        ? 'Deactivate your own account? Every session of yours ends, this console\'s included, and you cannot sign in until another admin activates it again.'
        : `Deactivate ${user.email}? Every session of theirs ends, and they cannot sign in until activated again.`
      if (user.isActive && !await agreed(question)) return
      act(toggle, 'Role and status', async () => {
        await api.update(id, { isActive: !user.isActive })
        return user.isActive ? 'Deactivated: every session of the user has ended, and they cannot sign in.' : 'Activated: the user can sign in again.'
      })
    })

    const rows = sessions.items.map(session => {
      const revoke = h('button', { type: 'button', class: 'secondary', 'aria-label': `End the session of ${device(session.userAgent)} from ${session.ip ?? 'an unknown address'}, last used ${dateTime(session.lastUsedAt)}` }, 'End')
      revoke.addEventListener('click', () => {
        act(revoke, 'Sessions', async () => {
          await api.revokeSession(id, session.id)
          return session.current ? undefined : 'The session has ended.'
        })
      })
      return [
        h('span', {}, h('span', { title: session.userAgent ?? '' }, device(session.userAgent)), session.current ? h('strong', { class: 'mark' }, 'this console') : ''),
        session.ip ?? '—',
        dateTime(session.createdAt),
        dateTime(session.lastUsedAt),
        revoke
      ]
    })
    const revokeAll = h('button', { type: 'button', class: 'danger' }, 'End all sessions')
    // A later page that came back empty says nothing of the first page's sessions.
    revokeAll.disabled = sessions.items.length === 0 && sessionsCursor === undefined
    revokeAll.addEventListener('click', async () => {
      const question = own
        ? 'End every session of your own account, this console\'s included? You will have to sign in again here and on every device.'
        : `End every session of ${user.email}? They will have to sign in again on every device.`
      if (!await agreed(question)) return
      act(revokeAll, 'Sessions', async () => {
        await api.revokeSessions(id)
        return 'Every session of the user has ended.'
      })
    })

    const reset = h('button', { type: 'button' }, 'Send password reset mail')
    reset.addEventListener('click', () => {
      act(reset, 'Password', async () => {
        await api.sendPasswordReset(id)
        return `A password reset link is on its way to ${user.email}.`
      })
    })

    // Only where the service says the user has one (admin user objects show mfaEnabled).
    const mfa = user.mfaEnabled === true ? h('button', { type: 'button', class: 'danger' }, 'Remove second factors') : null
    mfa?.addEventListener('click', async () => {
      // Irreversible, and it weakens the account: asked first, as a deletion is.
      const question = own
        ? 'Remove every second factor of your own account (authenticator app, recovery codes, passkeys)? Every session of yours ends, this console\'s included, and you are told by mail. Where the service requires a second factor of admins, you cannot use the console again until you set one up. This cannot be undone.'
        : `Remove every second factor of ${user.email} (authenticator app, recovery codes, passkeys)? Their sessions end and they are told by mail. This cannot be undone.`
      if (!await agreed(question)) return
      act(mfa, 'Second factor', async () => {
        await api.removeSecondFactors(id)
        return 'Every second factor of the user is removed and their sessions have ended; they were told by mail.'
      })
    })

    const confirmation = h('input', { name: 'confirm-email', autocomplete: 'off', spellcheck: 'false' })
    const remove = h('button', { type: 'submit', class: 'danger' }, 'Delete user')
    const removeForm = h('form', { 'aria-label': 'Delete user' },
      field('Type the email address to confirm', confirmation, `The user, their profile and sessions are deleted for good. Type ${user.email}.`),
      remove
    )
    removeForm.addEventListener('submit', event => {
      event.preventDefault()
      if (confirmation.value.trim().toLowerCase() !== user.email) {
        markInvalid(confirmation, messages.show(`To delete, type the user's email address exactly: ${user.email}.`, 'error'))
        confirmation.focus()
        return
      }
      messages.clear()
      // Back to the list only if the admin is still at this screen: they may have gone on
      // meanwhile, the next screen still loading (regression: the check of this screen alone).
      whileBusy(remove, () => api.remove(id), body).then(() => { if (shown()) navigate('#/users'); else tell('Deleted.') }, error => {
        if (!endsScreen(error)) tell(problemOf(error), 'error')
      })
    })

    body.replaceChildren(...[
      section('Profile', profile(user)),
      section('Role and status', roleForm, h('div', { class: 'actions' }, toggle), own ? h('p', { class: 'hint' }, 'This is your own account.') : null),
      section('Sessions',
        sessions.items.length === 0 ? h('p', {}, sessionsCursor === undefined ? 'No live session.' : 'No live session on this page.') : table('Live sessions, most recently used first', ['Device', 'IP address', 'Signed in', 'Last used', 'Action'], rows),
        sessionsCursor === undefined && sessions.nextCursor === null ? null : h('div', { class: 'pager' }, pager(`sessions ${id}`, sessionsCursor, sessions.nextCursor, next => { navigate(hashOf(`/users/${id}`, { sessions: next })) })),
        h('div', { class: 'actions' }, revokeAll)),
      section('Password', h('p', { class: 'hint' }, 'Mails a single-use link that expires; earlier links stop working.'), reset),
      mfa === null ? null : section('Second factor', mfa),
      section('Delete', removeForm)
    ].filter(element => element !== null))
  }

  render(first, firstSessions)
  return {
    title: first.email,
    element: h('section', {}, h('p', {}, h('a', { href: '#/users' }, '← All users'), ' · ', h('a', { href: `#/audit?user=${id}` }, 'Audit log of this user')), heading, messages.element, body)
  }
}
