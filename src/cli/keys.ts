// `npm run keys:generate -- [--dir DIR] [--algorithm EdDSA|ES256]`: a new access-token key pair in the key directory.
import { parseArgs } from 'node:util'
import { loadConfig } from '../config.js'
import { generateKeyFiles, type AsymmetricAlgorithm } from '../services/tokens/signing-keys.js'

const usage = 'usage: keys.ts generate [--dir DIR] [--algorithm EdDSA|ES256]   (defaults: JWT_KEYS_DIR, and JWT_ALGORITHM or EdDSA)'

async function main (): Promise<string> {
  const { positionals, values } = parseArgs({
    options: { dir: { type: 'string' }, algorithm: { type: 'string' } },
    allowPositionals: true
  })
  if (positionals.length !== 1 || positionals[0] !== 'generate') throw new Error(usage)
  const config = values.dir === undefined || values.algorithm === undefined ? loadConfig() : undefined
  const dir = values.dir ?? config?.JWT_KEYS_DIR
  const algorithm = values.algorithm ?? (config?.JWT_ALGORITHM === 'ES256' ? 'ES256' : 'EdDSA')
  if (dir === undefined) throw new Error(`no directory: pass --dir or set JWT_KEYS_DIR\n${usage}`)
  if (algorithm !== 'EdDSA' && algorithm !== 'ES256') throw new Error(`unsupported algorithm ${JSON.stringify(algorithm)}\n${usage}`)
  const { kid, privatePath, publicPath } = await generateKeyFiles(dir, algorithm as AsymmetricAlgorithm)
  return [
    `kid ${kid} (${algorithm})`,
    `  private key: ${privatePath} (mode 0600; keep it secret, on the service's instances only)`,
    `  public key:  ${publicPath}`,
    'Every instance must have the files before the key starts signing (JWT_KEY_PUBLISH_SECONDS after now).'
  ].join('\n')
}

try {
  console.log(await main())
} catch (error) {
  console.error((error as Error).message)
  process.exitCode = 1
}
