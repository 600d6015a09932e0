// The benchmark's report: one table with the ratios to the references, and the machine it ran on.
import { cpus, totalmem, release } from 'node:os'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Measurement } from './load.js'

export interface Row {
  name: string
  connections: number
  service: Measurement
  reference: Measurement
  referenceName: string
  /** The median round's service/reference ratio. */
  ratio: number
  /** The least acceptable ratio service/reference, when there is one. */
  target?: number | undefined
  /** The most the service's p99 may be, as a multiple of its p50, when there is such a bound. */
  tail?: number | undefined
}

export interface Report {
  machine: string
  seconds: number
  rounds: number
  rows: Row[]
  stormSeconds: number
  /** Absent when the run left the storm out (BENCH_ONLY). */
  storm?: Measurement | undefined
  health?: Measurement | undefined
  session?: Measurement | undefined
  peakRssMb: number
  /** The reference servers' peak RSS, by kind: what the framework and its libraries cost alone. */
  referenceRssMb: Record<string, number>
}

export function machineDescription (postgresVersion: string): string {
  const cpu = cpus()
  return `${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, Node ${process.version}, PostgreSQL ${postgresVersion}`
}

const verdict = (ok: boolean) => ok ? 'met' : '**missed**'
const cpuPerRequest = (measurement: Measurement) => measurement.cpuMicrosPerRequest ?? '–'

export function renderReport ({ machine, seconds, rounds, rows, stormSeconds, storm, health, session, peakRssMb, referenceRssMb }: Report): string {
  const lines = [
    `Machine: ${machine}. Each row: after a 2 s warm-up of each side, ${rounds} alternating rounds of ${seconds} s of autocannon against the reference then the service; the round with the median ratio is shown; CPU is what the server's process used per request in that round, all its threads. The load comes from a separate autocannon process; the service, the reference servers and PostgreSQL share the same machine.`,
    '',
    '| Scenario | Conns | Service req/s | p50 ms | p99 ms | Reference | Ref req/s | Ratio | CPU µs/req, service / ref | Target |',
    '| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |',
    ...rows.map(row => {
      const ratio = row.ratio
      const targets = [
        ...(row.target === undefined ? [] : [`≥ ${row.target.toFixed(2)}: ${verdict(ratio >= row.target)}`]),
        ...(row.tail === undefined ? [] : [`p99 < ${row.tail} × p50: ${verdict(row.service.p99 < row.tail * row.service.p50)}`])
      ]
      const target = targets.length === 0 ? '–' : targets.join('; ')
      const failures = row.service.failures + row.reference.failures > 0 ? ` (${row.service.failures}/${row.reference.failures} failures)` : ''
      return `| ${row.name} | ${row.connections} | ${row.service.rps} | ${row.service.p50} | ${row.service.p99} | ${row.referenceName} | ${row.reference.rps} | ${ratio.toFixed(2)}${failures} | ${cpuPerRequest(row.service)} / ${cpuPerRequest(row.reference)} | ${target} |`
    }),
    ...(storm === undefined || health === undefined || session === undefined
      ? []
      : ['', `Login storm (${stormSeconds} s at 50 connections, ${storm.rps} logins/s, ${storm.failures} failures) with two probes of 20 requests/s at the same time: \`GET /health\` p99 ${health.p99} ms (target < 20: ${verdict(health.p99 < 20)}), \`GET /auth/session\` p99 ${session.p99} ms (target < 25: ${verdict(session.p99 < 25)}).`]),
    '',
    `Peak RSS of the service over the whole run: ${peakRssMb} MB (target < 160: ${verdict(peakRssMb < 160)}); of the reference servers: ${Object.entries(referenceRssMb).map(([kind, mb]) => `${kind} ${mb} MB`).join(', ')}.`
  ]
  return lines.join('\n')
}

const START = '<!-- results:start -->'
const END = '<!-- results:end -->'

/** Replaces the results between the markers of `file`, keeping the written analysis around them. */
export async function writeReport (file: string, report: string): Promise<void> {
  const current = await readFile(file, 'utf8').catch(() => `# Benchmarks\n\n${START}\n${END}\n`)
  const start = current.indexOf(START)
  const end = current.indexOf(END)
  const next = start === -1 || end === -1
    ? `${current}\n${START}\n${report}\n${END}\n`
    : `${current.slice(0, start + START.length)}\n${report}\n${current.slice(end)}`
  await mkdir(dirname(file), { recursive: true })
  await writeFile(file, next)
}
