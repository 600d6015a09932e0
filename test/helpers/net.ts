// Loopback networking for tests that talk real HTTP.
import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'

/** A port that was free a moment ago on the loopback interface. */
export async function freePort (): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

export interface TcpProxy {
  port: number
  /** Stops forwarding in both directions: the connections stay open but nothing arrives, like a hung server. */
  freeze: () => void
  /** Forwards again; connections opened while frozen are dropped, as after a network partition. */
  thaw: () => void
  close: () => Promise<void>
}

/** A loopback TCP proxy to `targetPort`, to make a server hang without stopping it. */
export async function startTcpProxy (targetPort: number): Promise<TcpProxy> {
  let frozen = false
  const sockets = new Set<Socket>()
  const track = (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
  }
  const server = createServer(client => {
    const upstream = connect(targetPort, '127.0.0.1')
    track(client)
    track(upstream)
    client.on('data', chunk => { if (!frozen) upstream.write(chunk) })
    upstream.on('data', chunk => { if (!frozen) client.write(chunk) })
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  }).listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as { port: number }).port,
    freeze: () => { frozen = true },
    thaw: () => {
      frozen = false
      for (const socket of sockets) socket.destroy()
    },
    close: async () => {
      for (const socket of sockets) socket.destroy()
      server.close()
      await once(server, 'close')
    }
  }
}
