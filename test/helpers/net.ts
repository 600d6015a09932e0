// Loopback networking for tests that talk real HTTP.
import { randomInt } from 'node:crypto'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { connect, createServer, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

const LOWEST_PORT = 10_000
/** The ports above LOWEST_PORT that browsers refuse to fetch from (the Fetch standard's "bad ports"). */
const BROWSER_BAD_PORTS = new Set([10_080])

/** Where the kernel's ephemeral ports start: Linux says; elsewhere, IANA's 49152. */
export async function ephemeralPortsStart (): Promise<number> {
  const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '49152')
  return Number(range.trim().split(/\s+/)[0])
}

async function isFree (port: number): Promise<boolean> {
  const server = createServer()
  const listening = once(server, 'listening').then(() => true, () => false)
  server.listen(port, '127.0.0.1')
  if (!await listening) return false
  server.close()
  await once(server, 'close')
  return true
}

/**
 * A port that was free a moment ago on the loopback interface, for a server the test starts
 * later. It is chosen below the ephemeral range: a port from `listen(0)` is one the kernel
 * also gives to outgoing connections, and with the other test files' database connections
 * opening and closing, one of them took it before the server was listening. Never a port
 * browsers refuse.
 */
export async function freePort (draw: (min: number, max: number) => number = randomInt): Promise<number> {
  const end = await ephemeralPortsStart()
  for (let tries = 0; tries < 100; tries++) {
    const port = draw(LOWEST_PORT, end)
    // Regression: a browser test drew 10080, and Chromium answered ERR_UNSAFE_PORT.
    if (!BROWSER_BAD_PORTS.has(port) && await isFree(port)) return port
  }
  throw new Error(`no free port between ${LOWEST_PORT} and ${end} after 100 tries`)
}

export interface TcpProxy {
  port: number
  /** Stops forwarding in both directions: the connections stay open but nothing arrives, like a hung server. */
  freeze: () => void
  /** Forwards again; connections opened while frozen are dropped, as after a network partition. */
  thaw: () => void
  /** Holds what either side sends, like a partition TCP rides out: nothing arrives, nothing is lost. */
  hold: () => void
  /** Delivers what was held, in order, and forwards again on the same connections. */
  release: () => void
  /** Everything the clients have sent so far, as latin1 text. */
  sent: () => string
  close: () => Promise<void>
}

/** A loopback TCP proxy to `targetPort`, to make a server hang without stopping it. */
export async function startTcpProxy (targetPort: number): Promise<TcpProxy> {
  let mode: 'open' | 'frozen' | 'held' = 'open'
  const held: Array<() => void> = []
  let sent = ''
  const sockets = new Set<Socket>()
  const track = (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
  }
  const forwardTo = (to: Socket) => (chunk: Buffer) => {
    if (mode === 'open') to.write(chunk)
    else if (mode === 'held') held.push(() => to.write(chunk))
  }
  const server = createServer(client => {
    const upstream = connect(targetPort, '127.0.0.1')
    track(client)
    track(upstream)
    client.on('data', (chunk: Buffer) => { sent += chunk.toString('latin1') })
    client.on('data', forwardTo(upstream))
    upstream.on('data', forwardTo(client))
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  }).listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as { port: number }).port,
    freeze: () => { mode = 'frozen' },
    thaw: () => {
      mode = 'open'
      for (const socket of sockets) socket.destroy()
    },
    hold: () => { mode = 'held' },
    release: () => {
      mode = 'open'
      for (const write of held.splice(0)) write()
    },
    sent: () => sent,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      server.close()
      await once(server, 'close')
    }
  }
}

/** A raw TCP connection to a test server, for what a well-behaved HTTP client never does. */
export interface Connection {
  socket: Socket
  /** Everything the server has sent, as latin1 text. */
  received: () => string
  /** Milliseconds from the first byte sent to the server closing the connection. */
  closed: Promise<number>
}

/** Opens a raw TCP connection to `port` on the loopback interface. */
export function openConnection (port: number): Promise<Connection> {
  const socket = connect(port, '127.0.0.1')
  let received = ''
  let startedAt = 0
  socket.on('data', chunk => { received += chunk.toString('latin1') })
  socket.on('error', () => {})
  // Not `once`, which rejects at an 'error' first: a connection the server resets is closed all the same.
  const closed = new Promise<number>(resolve => socket.once('close', () => { resolve(Date.now() - startedAt) }))
  socket.once('connect', () => { startedAt = Date.now() })
  return once(socket, 'connect').then(() => ({ socket, received: () => received, closed }))
}

/** Writes `line` every 200 ms until the connection closes or `giveUpMs` pass; resolves to how long it stayed open, or undefined. */
export async function drip (connection: Connection, line: string, giveUpMs: number): Promise<number | undefined> {
  const timer = setInterval(() => { if (connection.socket.writable) connection.socket.write(line) }, 200)
  try {
    return await Promise.race([connection.closed, sleep(giveUpMs, undefined)])
  } finally {
    clearInterval(timer)
    connection.socket.destroy()
  }
}

/** A server that accepts connections and never answers, like a database that hangs before its first word. */
export async function startSilentServer (): Promise<{ port: number, close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createServer(socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      server.close()
      await once(server, 'close')
    }
  }
}
