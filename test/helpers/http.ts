// The app on a real loopback port, for tests that attack it over HTTP as a client would.
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'

export interface Http {
  baseUrl: string
  /** fetch against the app; a JSON `body` object is sent as application/json. */
  request: (path: string, init?: { method?: string, headers?: Record<string, string>, body?: unknown, raw?: string }) => Promise<{ status: number, headers: Headers, text: string, json: () => Record<string, unknown> }>
}

/** Listens on 127.0.0.1 and a free port; the app (and so the port) closes with the test. */
export async function listen (app: FastifyInstance): Promise<Http> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const baseUrl = `http://127.0.0.1:${port}`
  return {
    baseUrl,
    async request (path, init = {}) {
      const hasBody = init.body !== undefined || init.raw !== undefined
      const response = await fetch(`${baseUrl}${path}`, {
        method: init.method ?? (hasBody ? 'POST' : 'GET'),
        headers: { ...(hasBody ? { 'content-type': 'application/json' } : {}), ...init.headers },
        ...(hasBody ? { body: init.raw ?? JSON.stringify(init.body) } : {})
      })
      const text = await response.text()
      return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) as Record<string, unknown> }
    }
  }
}
