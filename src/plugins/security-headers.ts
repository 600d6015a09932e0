// Security headers (@fastify/helmet) for a JSON API: nothing here may be framed, sniffed or run as a page.
import fastifyHelmet from '@fastify/helmet'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/**
 * OWASP REST Security Cheat Sheet ("Security headers") and ASVS 14.4: a JSON answer needs
 * no source of anything, may not be framed, and is never sniffed into HTML. The interactive
 * docs relax the policy on their own routes only (see plugins/swagger.ts), where Swagger UI
 * sets its own header; everything else keeps this one.
 */
async function securityHeadersPlugin (app: FastifyInstance) {
  await app.register(fastifyHelmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] }
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // TLS ends at the proxy; browsers only honour this header over https (RFC 6797 8.1).
    strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true }
  })
}

export const securityHeaders = fp(securityHeadersPlugin, { name: 'security-headers' })
