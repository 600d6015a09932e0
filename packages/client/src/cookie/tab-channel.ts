// Messages between the tabs of one app (BroadcastChannel): a refresh done, a session started or ended.
import type { SessionEndEvent } from '../session-events.js'

export type TabMessage =
  | { type: 'refreshed', at: number }
  | { type: 'signed-in' }
  | { type: 'ended', event: SessionEndEvent }

export interface TabChannel {
  post: (message: TabMessage) => void
  close: () => void
}

/** Without BroadcastChannel, each tab goes on alone: it learns of other tabs' news from the service. */
export function openTabChannel (name: string, onMessage: (message: TabMessage) => void): TabChannel {
  if (typeof BroadcastChannel === 'undefined') return { post () {}, close () {} }
  const channel = new BroadcastChannel(name)
  channel.onmessage = event => { onMessage(event.data as TabMessage) }
  return {
    post: message => { channel.postMessage(message) },
    close: () => { channel.close() }
  }
}
