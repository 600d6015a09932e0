// This instance's deliverer of the mail outbox: started with the app, stopped with it (what is left waits in the database).
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { MailDelivery } from '../services/mail/delivery.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** `flush()` delivers every mail due now (tests use it to assert what was, or was not, sent). */
    mailer: MailDelivery
  }
}

async function mailerPlugin (app: FastifyInstance, { delivery, pollSeconds, stopGraceMs }: { delivery: MailDelivery, pollSeconds: number, stopGraceMs: number }) {
  app.decorate('mailer', delivery)
  app.addHook('onReady', async () => { delivery.start(pollSeconds) })
  app.addHook('onClose', async () => { await delivery.stop(stopGraceMs) })
}

export const mailer = fp(mailerPlugin, { name: 'mailer' })
