// While AUTH_SECRET_PREVIOUS is set: TOTP secrets sealed under the previous root secret are sealed again under AUTH_SECRET, once per start, in the background.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { FactorService } from '../services/mfa/factors.js'

async function totpResealPlugin (app: FastifyInstance, { factors }: { factors: FactorService }) {
  const stop = new AbortController()
  let pass: Promise<void> = Promise.resolve()
  app.addHook('onReady', async () => {
    // Not awaited: the service answers meanwhile, opening either key's secrets.
    pass = factors.resealStaleSecrets({ signal: stop.signal }).then(({ resealed, unreadable, complete }) => {
      if (!complete) return
      app.log.info({ resealed }, `AUTH_SECRET_PREVIOUS: ${resealed} TOTP secret(s) sealed again under AUTH_SECRET, none left under the previous secret; once a start after every instance runs the new secret says 0, remove AUTH_SECRET_PREVIOUS`)
      if (unreadable > 0) app.log.warn({ unreadable }, `AUTH_SECRET_PREVIOUS: ${unreadable} TOTP secret(s) open with neither secret; their owners sign in with a recovery code or a passkey, or an admin removes the factor`)
    }, (error: unknown) => { app.log.error({ err: error }, 'AUTH_SECRET_PREVIOUS: sealing TOTP secrets again failed; the next start tries again') })
  })
  app.addHook('onClose', async () => {
    stop.abort()
    await pass
  })
}

export const totpReseal = fp(totpResealPlugin, { name: 'totp-reseal' })
