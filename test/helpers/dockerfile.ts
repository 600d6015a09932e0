// A Dockerfile read and played without Docker: its build context (.dockerignore), its stages' COPY and RUN steps, in directories.
import { execFile } from 'node:child_process'
import { cp, mkdir, readdir, readFile } from 'node:fs/promises'
import { basename, join, posix, relative } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface Stage {
  name: string
  image: string
  /** The stage's WORKDIR, which `dir` stands for. */
  workdir: string
  dir: string
  env: Record<string, string>
  user?: string
  /** Exec-form CMD and HEALTHCHECK CMD. */
  cmd?: string[]
  healthcheck?: string[]
  expose: string[]
}

export type Step =
  | { kind: 'copy', stage: Stage, from: string | undefined, sources: string[], dest: string }
  | { kind: 'run', stage: Stage, command: string, env: Record<string, string> }

export interface Plan { stages: Stage[], steps: Step[] }

// Instructions with no effect on the files, kept only for what the tests check.
const ignored = new Set(['LABEL', 'STOPSIGNAL'])

/** Joins continued lines, drops comments and parser directives. */
function logicalLines (text: string): string[] {
  return text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map(line => line.trim()).filter(line => line !== '' && !line.startsWith('#'))
}

/**
 * Parses the Dockerfile into stages (each played in a directory of its own under `root`)
 * and steps. Anything it does not understand is an error, so a new kind of step cannot
 * slip past the test that plays them.
 */
export function planDockerfile (text: string, root: string): Plan {
  const args: Record<string, string> = {}
  const stages: Stage[] = []
  const steps: Step[] = []
  const expand = (value: string, env: Record<string, string> = {}) =>
    value.replace(/\$\{?(\w+)\}?/g, (whole, name: string) => env[name] ?? args[name] ?? whole)
  for (const line of logicalLines(text)) {
    const [, instruction = '', rest = ''] = /^(\w+)\s*(.*)$/.exec(line) ?? []
    const stage = stages.at(-1)
    const current = (): Stage => {
      if (stage === undefined) throw new Error(`${instruction} before FROM`)
      return stage
    }
    switch (instruction.toUpperCase()) {
      case 'ARG': {
        const [name = '', value = ''] = rest.split(/=(.*)/s)
        args[name] = value
        break
      }
      case 'FROM': {
        const [, image = '', name = String(stages.length)] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest) ?? []
        stages.push({ name, image: expand(image), workdir: '/', dir: join(root, name), env: {}, expose: [] })
        break
      }
      case 'WORKDIR':
        current().workdir = posix.resolve(current().workdir, expand(rest, current().env))
        break
      case 'ENV':
        for (const [, name = '', value = ''] of rest.matchAll(/(\w+)=("[^"]*"|\S*)/g)) current().env[name] = expand(value.replace(/^"|"$/g, ''), current().env)
        break
      case 'COPY': {
        const words = rest.split(/\s+/)
        const from = words.find(word => word.startsWith('--from='))?.slice('--from='.length)
        const paths = words.filter(word => !word.startsWith('--'))
        const dest = paths.pop()
        if (dest === undefined || paths.length === 0) throw new Error(`COPY needs a source and a destination: ${line}`)
        steps.push({ kind: 'copy', stage: current(), from, sources: paths, dest })
        break
      }
      case 'RUN': {
        if (rest.startsWith('[')) throw new Error(`exec-form RUN is not supported: ${line}`)
        steps.push({ kind: 'run', stage: current(), command: rest.replace(/^(--\S+\s+)+/, ''), env: { ...current().env } })
        break
      }
      case 'USER':
        current().user = rest
        break
      case 'EXPOSE':
        current().expose.push(...rest.split(/\s+/))
        break
      case 'CMD':
        current().cmd = JSON.parse(rest) as string[]
        break
      case 'HEALTHCHECK':
        current().healthcheck = JSON.parse(rest.replace(/^.*?\bCMD\s+/, '')) as string[]
        break
      default:
        if (!ignored.has(instruction.toUpperCase())) throw new Error(`instruction not played by this test: ${line}`)
    }
  }
  return { stages, steps }
}

/** A .dockerignore pattern as a regular expression on slash-separated paths relative to the context. */
function patternOf (pattern: string): RegExp {
  const body = posix.normalize(pattern.replace(/^\//, '')).replace(/\/$/, '')
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*\*\/?/g, '\u0000').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replaceAll('\u0000', '.*')
  return new RegExp(`^${body}$`)
}

/**
 * Copies the build context Docker would send: `contextDir` minus what .dockerignore
 * excludes. As in Docker, a pattern matching a directory matches everything under it, the
 * last matching pattern wins, and `!` re-includes.
 */
export async function copyBuildContext (contextDir: string, target: string): Promise<string[]> {
  const rules = (await readFile(join(contextDir, '.dockerignore'), 'utf8')).split('\n')
    .map(line => line.trim()).filter(line => line !== '' && !line.startsWith('#'))
    .map(line => ({ include: line.startsWith('!'), raw: line.replace(/^!\/?/, ''), pattern: patternOf(line.replace(/^!/, '')) }))
  const excluded = (path: string) => {
    const prefixes = path.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'))
    let result = false
    for (const rule of rules) if (prefixes.some(prefix => rule.pattern.test(prefix))) result = !rule.include
    return result
  }
  const copied: string[] = []
  async function walk (dir: string): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = relative(contextDir, join(dir, entry.name)).split('\\').join('/')
      if (entry.isDirectory()) {
        // Skips big excluded trees (node_modules) unless an exception could reach inside.
        const reachable = rules.some(rule => rule.include && (rule.raw.startsWith(`${path}/`) || rule.raw.includes('**')))
        if (!excluded(path) || reachable) await walk(join(dir, entry.name))
      } else if (!excluded(path)) {
        await mkdir(join(target, posix.dirname(path)), { recursive: true })
        await cp(join(dir, entry.name), join(target, path), { preserveTimestamps: true })
        copied.push(path)
      }
    }
  }
  await walk(contextDir)
  return copied
}

/** Plays one step: COPY as Docker does it (a directory's contents), RUN through sh in the stage's directory. */
export async function playStep (step: Step, plan: Plan, contextDir: string, extraEnv: Record<string, string>): Promise<string> {
  const inStage = (stage: Stage, path: string) => join(stage.dir, posix.relative(stage.workdir, posix.resolve(stage.workdir, path)))
  if (step.kind === 'run') {
    await mkdir(step.stage.dir, { recursive: true })
    const { stdout, stderr } = await run('sh', ['-c', step.command], { cwd: step.stage.dir, env: { ...process.env, ...step.env, ...extraEnv }, maxBuffer: 64 * 1024 * 1024 })
    return stdout + stderr
  }
  const source = step.from === undefined ? undefined : plan.stages.find(stage => stage.name === step.from)
  if (step.from !== undefined && source === undefined) throw new Error(`COPY --from=${step.from}: no such stage`)
  const toDir = step.dest.endsWith('/') || step.sources.length > 1
  for (const path of step.sources) {
    if (/[*?[]/.test(path)) throw new Error(`COPY with wildcards is not played by this test: ${path}`)
    const from = source === undefined ? join(contextDir, path) : inStage(source, path)
    const to = inStage(step.stage, step.dest)
    const isDir = (await readdir(from).then(() => true, () => false))
    const target = isDir ? to : toDir ? join(to, basename(path)) : to
    await mkdir(isDir ? target : join(target, '..'), { recursive: true })
    await cp(from, target, { recursive: true, preserveTimestamps: true })
  }
  return ''
}

/**
 * Plays every step in the order BuildKit allows: a stage's steps one after the other, the
 * stages at once, and a COPY --from waiting until the stage it copies from is complete (the
 * runtime stage's npm ci runs while the build stage builds). `check` receives each step
 * with the promise of its playing, and is awaited before the stage's next step.
 */
export async function playPlan (plan: Plan, contextDir: string, extraEnv: Record<string, string>, check: (step: Step, played: Promise<string>) => Promise<unknown>): Promise<void> {
  const complete = new Map<string, Promise<void>>()
  for (const stage of plan.stages) {
    // A stage copies only from the stages before it, all in `complete` by now.
    const before = new Map(complete)
    complete.set(stage.name, (async () => {
      for (const step of plan.steps.filter(step => step.stage === stage)) {
        if (step.kind === 'copy' && step.from !== undefined) await before.get(step.from)
        await check(step, playStep(step, plan, contextDir, extraEnv))
      }
    })())
  }
  await Promise.all(complete.values())
}
