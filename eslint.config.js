// Lint rules: neostandard (the Fastify ecosystem's style) with TypeScript support, and size limits on the service's code.
import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'packages/*/dist/**', 'src/generated/**', 'coverage/**', '.tap/**', '.data/**']
  }),
  {
    // A function past 60 lines or a file past 250 is asking to be split by use case (STYLE 9).
    files: ['src/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true }],
      'max-lines': ['error', { max: 250, skipBlankLines: true, skipComments: true }]
    }
  }
]
