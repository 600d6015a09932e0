// Who a request comes from: its address in one canonical form, and the client a per-ip limit counts.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Address6 } from 'ip-address'
import { isIPv4, isIPv6 } from 'node:net'

export interface ClientAddressSettings {
  /**
   * Whether a proxy's X-Forwarded-For names the client (TRUST_PROXY): only then can
   * `request.ip` be anything but the socket's own address, which Node spells canonically.
   */
  behindProxy: boolean
}

/**
 * An address in one form, or null for a value that is none: a port after an IPv4 address or
 * a bracketed IPv6 one is dropped, an IPv4-mapped IPv6 address becomes IPv4, and IPv6 takes
 * its canonical spelling. Some proxies write `ip:port` into X-Forwarded-For; taken as is,
 * each port was a new client for the limits (regression).
 */
function canonicalIp (value: string): string | null {
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(value)
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(value)
  const address = bracketed?.[1] ?? v4WithPort?.[1] ?? value
  if (isIPv4(address)) return address
  if (!isIPv6(address)) return null
  const v6 = new Address6(address)
  return v6.isMapped4() ? v6.to4().correctForm() : v6.correctForm()
}

/**
 * Makes `request.ip` a canonical address, for the limits, the sessions and the audit trail
 * alike. A trusted proxy's X-Forwarded-For entry that is no address at all (a misconfigured
 * proxy, or one passing on what the client wrote) becomes the proxy's own address: such
 * requests then share one identity instead of each naming a new one.
 */
function canonicaliseIp (request: FastifyRequest): void {
  const ip = request.ip as string | undefined
  // Undefined once the client has reset its connection; IPv4, the common case, is already canonical.
  if (ip === undefined || isIPv4(ip)) return
  const socketAddress = request.socket.remoteAddress
  const canonicalAddress = canonicalIp(ip) ?? (socketAddress === undefined ? null : canonicalIp(socketAddress))
  if (canonicalAddress !== null && canonicalAddress !== ip) Object.defineProperty(request, 'ip', { value: canonicalAddress, enumerable: true })
}

/**
 * The client a per-ip limit counts, as @fastify/rate-limit keys it: the address (made
 * canonical on arrival behind a proxy, canonicaliseIp), an IPv4-mapped one as IPv4, an IPv6
 * client by its /64 (one subscriber's whole network).
 */
export function clientOf (request: FastifyRequest): string {
  // Undefined once the client has reset its connection, before the limits looked at the
  // request: nobody reads its answer, so any key does (regression: a 500 and an error line).
  const ip = request.ip as string | undefined
  if (ip === undefined) return 'gone'
  if (!isIPv6(ip)) return ip
  // A dual-stack socket's IPv4 client: without a proxy, no hook has made it IPv4.
  const address = new Address6(ip)
  return address.isMapped4() ? address.to4().correctForm() : new Address6(`${ip}/64`).startAddress().correctForm()
}

async function clientAddressesPlugin (app: FastifyInstance, settings: ClientAddressSettings) {
  // At the root, ahead of every route's own hooks (its limits among them) and every handler: one
  // place for the whole app. Only behind a proxy: a hook on every request costs the hot paths.
  if (settings.behindProxy) app.addHook('onRequest', (request, _reply, done) => { canonicaliseIp(request); done() })
}

export const clientAddresses = fp(clientAddressesPlugin, { name: 'client-addresses' })
