// What every screen is given: the API, who is signed in, and the way to another screen.
import type { AdminApi } from './api.js'

export interface Context {
  api: AdminApi
  /** The signed-in admin's id: the console warns before they lock themselves out. */
  meId: string
  /** The current route's query (after `?` in the hash). */
  params: URLSearchParams
  /** Goes to `hash` (like `#/users?q=ada`), as a link would. */
  navigate: (hash: string) => void
  /**
   * Whether `error`, an action's failure, ends the screen rather than being told on it: the
   * session is over (the client library has said so), or the admin API refuses this account now
   * (demoted, or their factor removed, while the console was open), whose refusal screen it shows.
   */
  endsScreen: (error: unknown) => boolean
  /**
   * Tells in the frame, until the next screen, what an action came to once the admin had left
   * its screen: a refusal (the last admin) told nowhere else was lost with the screen.
   */
  tellElsewhere: (text: string, kind: 'ok' | 'error') => void
  /**
   * Asks `question` (the browser's confirm()): true when the admin said yes and no other tab
   * signed in meanwhile. While the question is open the tab hears nothing, so another tab's
   * sign-in waits behind it; it is heard before this answers (regression: on OK the action ran
   * as the account the other tab had signed in).
   */
  ask: (question: string) => Promise<boolean>
}

/** A screen: its title (also the page's) and its content, whose h1 gets the focus after navigation. */
export interface Screen {
  title: string
  element: HTMLElement
  /**
   * What a screen reader is told once the screen is shown (a search's count), through the
   * frame's status region: one inserted with the screen would not be heard.
   */
  status?: string
}

/** A hash with a query, leaving out empty values. */
export function hashOf (path: string, query: Record<string, string | undefined>): string {
  const search = new URLSearchParams()
  for (const [name, value] of Object.entries(query)) if (value !== undefined && value !== '') search.set(name, value)
  const text = search.toString()
  return text === '' ? `#${path}` : `#${path}?${text}`
}

/**
 * Cursors only go forward: per list and filter, the cursor of the page before each page that
 * "Next page" opened, so that "Previous page" goes back one page however the admin came to this
 * one (the buttons, or the browser's Back and Forward). A reload forgets them, and "Previous"
 * then goes to the first page.
 */
const pageBefore = new Map<string, Map<string, string | undefined>>()

export function pager (list: string, cursor: string | undefined, nextCursor: string | null, go: (cursor: string | undefined) => void): HTMLElement[] {
  const before = pageBefore.get(list) ?? new Map<string, string | undefined>()
  pageBefore.set(list, before)
  const previous = document.createElement('button')
  previous.type = 'button'
  previous.textContent = 'Previous page'
  previous.disabled = cursor === undefined
  previous.addEventListener('click', () => { go(cursor === undefined ? undefined : before.get(cursor)) })
  const next = document.createElement('button')
  next.type = 'button'
  next.textContent = 'Next page'
  next.disabled = nextCursor === null
  next.addEventListener('click', () => {
    if (nextCursor === null) return
    before.set(nextCursor, cursor)
    go(nextCursor)
  })
  return [previous, next]
}
