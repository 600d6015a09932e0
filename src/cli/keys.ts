// `npm run keys:generate -- [--dir DIR] [--algorithm EdDSA|ES256]`: a new access-token key pair in the key directory.
import { parseArgs } from 'node:util'
import { ConfigSchema } from '../config.js'
import { generateKeyFiles, type AsymmetricAlgorithm } from '../services/tokens/signing-keys.js'

const usage = 'usage: keys.ts generate [--dir DIR] [--algorithm EdDSA|ES256]   (defaults: JWT_KEYS_DIR, and JWT_ALGORITHM or EdDSA)'

// The values the service accepts, from its own schema.
const configuredAlgorithms: string[] = ConfigSchema.properties.JWT_ALGORITHM.anyOf.map(choice => choice.const)

/**
 * JWT_KEYS_DIR and JWT_ALGORITHM alone, and only those no flag gives: making a key needs no
 * secret, database or URL (as db:migrate reads only the database settings), and the first
 * key is made before JWT_KEYS_DIR holds one, which the service's configuration requires.
 * An empty variable is unset, as for the service.
 */
function keySettings (values: { dir?: string | undefined, algorithm?: string | undefined }, env: NodeJS.ProcessEnv = process.env) {
  const dir = values.dir ?? (env.JWT_KEYS_DIR === '' ? undefined : env.JWT_KEYS_DIR)
  if (dir === undefined) throw new Error(`no directory: pass --dir or set JWT_KEYS_DIR\n${usage}`)
  let algorithm = values.algorithm
  if (algorithm === undefined) {
    const configured = env.JWT_ALGORITHM === '' ? undefined : env.JWT_ALGORITHM
    if (configured !== undefined && !configuredAlgorithms.includes(configured)) {
      throw new Error(`JWT_ALGORITHM: must be one of ${configuredAlgorithms.join(', ')}, got ${JSON.stringify(configured)} (or pass --algorithm)\n${usage}`)
    }
    // HS256 signs with no key file: its key pair is for a switch, EdDSA unless told otherwise.
    algorithm = configured === 'ES256' ? 'ES256' : 'EdDSA'
  }
  if (algorithm !== 'EdDSA' && algorithm !== 'ES256') throw new Error(`unsupported algorithm ${JSON.stringify(algorithm)}\n${usage}`)
  return { dir, algorithm: algorithm as AsymmetricAlgorithm }
}

async function main (): Promise<string> {
  const { positionals, values } = parseArgs({
    options: { dir: { type: 'string' }, algorithm: { type: 'string' } },
    allowPositionals: true
  })
  if (positionals.length !== 1 || positionals[0] !== 'generate') throw new Error(usage)
  const { dir, algorithm } = keySettings(values)
  const { kid, privatePath, publicPath } = await generateKeyFiles(dir, algorithm)
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
