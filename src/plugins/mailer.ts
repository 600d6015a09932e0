// The outgoing mail queue on the instance: flushed and closed with the app, so a shutdown loses no queued mail.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Mailer } from '../services/mail.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** `flush()` waits for every queued mail (tests use it to assert that none was sent). */
    mailer: Mailer
  }
}

async function mailerPlugin (app: FastifyInstance, { mailer }: { mailer: Mailer }) {
  app.decorate('mailer', mailer)
  app.addHook('onClose', async () => { await mailer.close() })
}

export const mailer = fp(mailerPlugin, { name: 'mailer' })
