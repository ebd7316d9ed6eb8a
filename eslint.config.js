// Lint: typescript-eslint's recommended rules plus the import direction of DESIGN.md §1:
// sdk imports nothing else of ours; broker may use only sdk/protocol and sdk/errors;
// connectors, spout and examples use the SDK's public entry only; nothing imports test/ or bench/.
import tseslint from 'typescript-eslint';

const testAndBench = ['**/test/**', '**/bench/**'];
const restrict = (patterns, message) => ({
  'no-restricted-imports': ['error', { patterns: [{ group: patterns, message }] }],
});

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', '**/*.js', '**/*.cjs', '**/*.mjs'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['sdk/**/*.ts'],
    rules: restrict(['**/broker/**', '**/connectors/**', '**/spout/**', '**/examples/**', ...testAndBench],
      'sdk/ imports nothing else of ours (DESIGN.md §1)'),
  },
  {
    files: ['broker/**/*.ts'],
    rules: restrict(['**/sdk/*', '!**/sdk/protocol', '!**/sdk/errors.js', '**/connectors/**', '**/spout/**',
      '**/examples/**', ...testAndBench],
      'broker/ may import only sdk/protocol and sdk/errors (DESIGN.md §1)'),
  },
  {
    files: ['connectors/**/*.ts', 'spout/**/*.ts', 'examples/**/*.ts'],
    rules: restrict(['**/broker/**', '**/sdk/*/**', ...testAndBench],
      'connectors, spout and examples use the SDK public entry (sdk/index.js) only (DESIGN.md §1)'),
  },
  {
    // Process-level tests, benchmarks and the CLI print to the terminal by design.
    files: ['test/**/*.ts', 'bench/**/*.ts', 'broker/cli/**/*.ts', 'examples/**/*.ts', '**/*.test.ts'],
    rules: { 'no-console': 'off' },
  },
);
