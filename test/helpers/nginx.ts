// Debian's nginx on the loopback interface, run with the repository's deploy/nginx.conf, and an https client that can choose its source address.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { request as httpsRequest } from 'node:https'
import { connect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { join } from 'node:path'
import { promisify } from 'node:util'

export const NGINX = '/usr/sbin/nginx'
export const nginxConfig = join(import.meta.dirname, '..', '..', 'deploy', 'nginx.conf')

export interface Nginx {
  port: number
  /** The self-signed certificate it serves, for clients to trust. */
  certificate: string
  errors: () => Promise<string>
  /** Its access log, as deploy/nginx.conf formats it. */
  accessLog: () => Promise<string>
  stop: () => Promise<void>
}

/** A self-signed certificate for localhost and 127.0.0.1, made with openssl. */
async function makeCertificate (dir: string): Promise<{ cert: string, key: string }> {
  const cert = join(dir, 'tls.crt')
  const key = join(dir, 'tls.key')
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert
  ])
  return { cert, key }
}

/** deploy/nginx.conf with the test's addresses; fails when a setting it swaps is no longer there. */
function siteConfig (text: string, swaps: Array<[RegExp, string]>): string {
  return swaps.reduce((config, [pattern, value]) => {
    if (!pattern.test(config)) throw new Error(`deploy/nginx.conf no longer contains ${pattern}`)
    return config.replace(pattern, value)
  }, text)
}

/**
 * Starts nginx in the foreground with deploy/nginx.conf as its site, the upstream servers
 * replaced by `upstreams`, listening on 127.0.0.1:`port` with a fresh certificate. The
 * main configuration keeps every file nginx writes inside `dir`, and `corsOrigin` is the one
 * origin listed for nginx's own answers. Each client connection takes two of
 * `workerConnections` (its own and the one to an upstream).
 */
export async function startNginx (dir: string, port: number, upstreams: [number, number], { workerConnections = 256, corsOrigin = 'https://app.example.com' } = {}): Promise<Nginx> {
  await mkdir(join(dir, 'temp'), { recursive: true })
  const { cert, key } = await makeCertificate(dir)
  const site = siteConfig(await readFile(nginxConfig, 'utf8'), [
    [/server auth-a:3000\b/, `server 127.0.0.1:${upstreams[0]}`],
    [/server auth-b:3000\b/, `server 127.0.0.1:${upstreams[1]}`],
    [/listen 443 ssl;/, `listen 127.0.0.1:${port} ssl;`],
    [/\/etc\/nginx\/certs\/tls\.crt/, cert],
    [/\/etc\/nginx\/certs\/tls\.key/, key],
    [/\/var\/log\/nginx\/access\.log/, join(dir, 'access.log')],
    // The commented example, listed.
    [/# "https:\/\/app\.example\.com" \$http_origin;/, `"${corsOrigin}" $http_origin;`]
  ])
  await writeFile(join(dir, 'site.conf'), site)
  const temp = (name: string) => `${name}_temp_path ${join(dir, 'temp', name)};`
  await writeFile(join(dir, 'nginx.conf'), [
    'daemon off;',
    'worker_processes 1;',
    // Workers run as root only when the test does, and then only to reach its private files.
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} warn;`,
    `events { worker_connections ${workerConnections}; }`,
    'http {',
    `  ${temp('client_body')} ${temp('proxy')} ${temp('fastcgi')} ${temp('uwsgi')} ${temp('scgi')}`,
    `  include ${join(dir, 'site.conf')};`,
    '}'
  ].join('\n'))
  const child: ChildProcess = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', chunk => { stderr += chunk })
  const exited = once(child, 'exit')
  const errors = async () => `${stderr}${await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')}`
  const deadline = Date.now() + 10_000
  while (!await accepts(port)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`nginx did not start: ${await errors()}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return {
    port,
    certificate: await readFile(cert, 'utf8'),
    errors,
    accessLog: async () => await readFile(join(dir, 'access.log'), 'utf8').catch(() => ''),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGQUIT')
      await exited
    }
  }
}

function accepts (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

export const nginxInstalled = () => existsSync(NGINX)

export interface HttpsAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** Parsed JSON, or the text when it is not JSON. */
  body: unknown
}

/** A request to https://localhost:`port` from `sourceAddress` (any 127.0.0.0/8 address), trusting `ca`. */
export function httpsCall (port: number, ca: string, sourceAddress: string, method: string, path: string, options: { headers?: Record<string, string>, body?: unknown } = {}): Promise<HttpsAnswer> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body)
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1',
      servername: 'localhost',
      port,
      method,
      path,
      ca,
      localAddress: sourceAddress,
      agent: false,
      headers: { host: `localhost:${port}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers }
    }, res => {
      let text = ''
      res.on('data', chunk => { text += chunk })
      res.on('end', () => {
        let body: unknown = text
        try { body = JSON.parse(text) } catch {}
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
      })
    })
    req.on('error', reject)
    req.end(payload)
  })
}

/**
 * `head` (a request line and headers, CRLF-separated, without the blank line) and `body` sent
 * as written over TLS from `sourceAddress`, for what an HTTP client would refuse to send (a
 * control byte in a header, a header twice): what came back, whole, until the connection closed.
 */
export function rawHttpsAnswer (port: number, ca: string, sourceAddress: string, head: string, body: string): Promise<string> {
  return new Promise(resolve => {
    const socket = tlsConnect({ socket: connect({ host: '127.0.0.1', port, localAddress: sourceAddress }), servername: 'localhost', ca }, () => {
      socket.write(`${head}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
    })
    let answer = ''
    socket.on('data', chunk => { answer += chunk })
    socket.on('close', () => { resolve(answer) })
    socket.on('error', () => {})
  })
}

/** `rawHttpsAnswer`'s status, or 0 when the connection broke without one. */
export async function rawHttpsStatus (port: number, ca: string, sourceAddress: string, head: string, body: string): Promise<number> {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(await rawHttpsAnswer(port, ca, sourceAddress, head, body))?.[1] ?? 0)
}
