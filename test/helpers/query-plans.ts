// Which index PostgreSQL reads for a statement, from its plan (EXPLAIN), on either database.
import { withClient } from './database.js'

export interface PlanNode { 'Index Name'?: string, 'Index Cond'?: string, Plans?: PlanNode[] }

/**
 * The nodes of `statement`'s plan that read `index`. Sequential scans are off while it is
 * planned: a table of a few rows is read whole whatever its indexes, and the question is
 * whether the index serves the statement at all. Nothing is run.
 */
export async function readsOfIndex (url: string, statement: { text: string, values: unknown[] }, index: string): Promise<PlanNode[]> {
  const plan = await withClient(url, async client => {
    await client.query('BEGIN')
    try {
      await client.query('SET LOCAL enable_seqscan = off')
      return (await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (FORMAT JSON) ${statement.text}`, statement.values)).rows[0]?.['QUERY PLAN'][0]?.Plan
    } finally {
      await client.query('ROLLBACK')
    }
  })
  const nodes = (node: PlanNode | undefined): PlanNode[] => node === undefined ? [] : [node, ...(node.Plans ?? []).flatMap(nodes)]
  return nodes(plan).filter(node => node['Index Name'] === index)
}
