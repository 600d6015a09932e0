// The documentation's relative links lead somewhere (README.md, docs/*.md, packages/client/README.md): each link's file is there, and its #fragment is one of that file's headings.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import t from 'tap'

const root = join(import.meta.dirname, '..')

interface Link { file: string, line: number, text: string, target: string }

/** The lines with fenced code blocks blanked (to spaces, so offsets hold), so nothing in one is a heading or a link. */
function outsideFences (text: string): string[] {
  let fence: { char: string, length: number } | undefined
  return text.split('\n').map(line => {
    const marker = /^\s*(`{3,}|~{3,})(.*)$/.exec(line)
    if (fence === undefined) {
      if (marker === null) return line
      fence = { char: marker[1]?.[0] ?? '`', length: marker[1]?.length ?? 3 }
      return ' '.repeat(line.length)
    }
    if (marker !== null && marker[1]?.[0] === fence.char && (marker[1]?.length ?? 0) >= fence.length && marker[2]?.trim() === '') fence = undefined
    return ' '.repeat(line.length)
  })
}

/** GitHub's anchor for a heading's text (github-slugger): lower case, only letters, digits, spaces, hyphens and underscores, spaces to hyphens. */
function slugOf (heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link or an image: its text
    .replace(/<[^>]*>/g, '') // inline HTML
  return text.trim().toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '').replace(/ /g, '-')
}

/** The anchors of a markdown file: its headings' slugs (a repeated one gets -1, -2, …) and HTML ids. */
function anchorsOf (text: string): Set<string> {
  const lines = outsideFences(text)
  const occurrences = new Map<string, number>()
  const anchors = new Set<string>()
  const add = (heading: string): void => {
    const base = slugOf(heading)
    let slug = base
    while (occurrences.has(slug)) {
      const count = (occurrences.get(base) ?? 0) + 1
      occurrences.set(base, count)
      slug = `${base}-${count}`
    }
    occurrences.set(slug, 0)
    anchors.add(slug)
  }
  lines.forEach((line, i) => {
    const atx = /^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/.exec(line)
    if (atx !== null) return add(atx[1] ?? '')
    const previous = lines[i - 1] ?? ''
    if (/^ {0,3}(=+|-+)[ \t]*$/.test(line) && previous.trim() !== '' && !/^\s*([|>#*+-]|\d+[.)])/.test(previous)) add(previous)
  })
  for (const match of text.matchAll(/<[a-z][^>]*\s(?:id|name)="([^"]+)"/gi)) anchors.add(match[1] ?? '')
  return anchors
}

/** Every `[text](target)` (images too) and `[label]: target` of a markdown file, outside code. */
function linksOf (file: string, text: string): Link[] {
  // Code spans blanked, character for character, so offsets still point into `text`.
  const prose = outsideFences(text).join('\n')
    .replace(/(?<!`)(`+)(?!`)(?:(?!\n[ \t]*\n)[\s\S])*?(?<!`)\1(?!`)/g, span => span.replace(/[^\n]/g, ' '))
  const lineAt = (offset: number): number => prose.slice(0, offset).split('\n').length
  const links: Link[] = []
  const inline = /(?<!\\)!?\[((?:[^[\]\\]|\\.|\[(?:[^[\]\\]|\\.)*\])*)\]\(\s*(<[^>\n]*>|(?:[^()\s\\]|\\.|\((?:[^()\s\\]|\\.)*\))*)(?:\s+(?:"[^"]*"|'[^']*'|\([^)]*\)))?\s*\)/g
  for (const match of prose.matchAll(inline)) {
    const start = match.index + match[0].indexOf('[') + 1
    links.push({ file, line: lineAt(match.index), text: text.slice(start, start + (match[1] ?? '').length).replace(/\s+/g, ' '), target: (match[2] ?? '').replace(/^<|>$/g, '') })
  }
  for (const match of prose.matchAll(/^ {0,3}\[([^\]]+)\]:[ \t]*(<[^>\n]*>|\S+)/gm)) {
    links.push({ file, line: lineAt(match.index), text: match[1] ?? '', target: (match[2] ?? '').replace(/^<|>$/g, '') })
  }
  return links
}

/** What is wrong with a link, relative to `base`; undefined when it leads somewhere (an external one is not checked). */
function problemOf (base: string, link: Link): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(link.target) || link.target.startsWith('//')) return undefined
  const hash = link.target.indexOf('#')
  const path = hash === -1 ? link.target : link.target.slice(0, hash)
  let fragment: string | undefined
  let file: string
  try {
    fragment = hash === -1 ? undefined : decodeURIComponent(link.target.slice(hash + 1))
    file = path === '' ? join(base, link.file) : path.startsWith('/') ? join(base, decodeURI(path)) : join(base, dirname(link.file), decodeURI(path))
  } catch {
    return 'not a well-formed URL'
  }
  const shown = relative(base, file)
  if (!existsSync(file)) return `${shown} does not exist`
  if (fragment === undefined || fragment === '') return undefined
  if (!/\.(md|markdown)$/i.test(file) || statSync(file).isDirectory()) {
    return /^L\d+(-L\d+)?$/.test(fragment) ? undefined : `#${fragment}: ${shown} is not a markdown file with headings`
  }
  return anchorsOf(readFileSync(file, 'utf8')).has(fragment) ? undefined : `${shown} has no heading #${fragment}`
}

function documentation (): string[] {
  const docs = readdirSync(join(root, 'docs')).filter(name => name.endsWith('.md')).sort().map(name => `docs/${name}`)
  return ['README.md', ...docs, 'packages/client/README.md']
}

t.test('GitHub\'s slugs', async t => {
  t.equal(slugOf('Replacing AUTH_SECRET'), 'replacing-auth_secret')
  t.equal(slugOf('Trying the production setup: docker compose'), 'trying-the-production-setup-docker-compose')
  t.equal(slugOf('`GET /auth/session`: the token check'), 'get-authsession-the-token-check')
  t.equal(slugOf('Health, readiness and load shedding'), 'health-readiness-and-load-shedding')
  t.same([...anchorsOf('# A\n\n## A\n\n```sh\n# A\n```\n\nB\n---\n\n### A\n')], ['a', 'a-1', 'b', 'a-2'], 'repeats numbered, fenced lines ignored, setext read')
})

t.test('a broken link fails, whatever is broken', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'docs-links-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'b.md'), '# Title\n\n## Title\n')
  const text = [
    '# Here', '',
    '[fine](b.md#title-1) [top](#here) [web](https://example.com/x.md) [mail](mailto:a@example.com)',
    '[gone](missing.md) [no heading](b.md#nope) [no anchor here](#there)',
    '`[in code](missing.md)`', '', '```md', '[fenced](missing.md)', '```', '',
    '[label]: missing-too.md', ''
  ].join('\n')
  writeFileSync(join(dir, 'a.md'), text)
  const problems = linksOf('a.md', text).map(link => [link.line, link.target, problemOf(dir, link)])
  t.same(problems, [
    [3, 'b.md#title-1', undefined],
    [3, '#here', undefined],
    [3, 'https://example.com/x.md', undefined],
    [3, 'mailto:a@example.com', undefined],
    [4, 'missing.md', 'missing.md does not exist'],
    [4, 'b.md#nope', 'b.md has no heading #nope'],
    [4, '#there', 'a.md has no heading #there'],
    [11, 'missing-too.md', 'missing-too.md does not exist']
  ])
})

t.test('every relative link of the documentation leads somewhere', async t => {
  const files = documentation()
  t.ok(files.length > 2, 'README.md, docs/*.md and the client library\'s README')
  let count = 0
  for (const file of files) {
    for (const link of linksOf(file, readFileSync(join(root, file), 'utf8'))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link.target) || link.target.startsWith('//')) continue
      count++
      const problem = problemOf(root, link)
      t.ok(problem === undefined, `${file}:${link.line}: [${link.text}](${link.target})${problem === undefined ? '' : `: ${problem}`}`)
    }
  }
  t.ok(count > 50, `${count} relative links checked`)
})
