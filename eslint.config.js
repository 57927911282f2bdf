import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.temporal/', '.data/', '.node24/', 'test-artifacts/', 'dist/', 'clients/typescript/dist/', '.venv-tests/'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Workflow code is replayed deterministically in a sandbox: no Node built-ins, no I/O.
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'Workflow code must not use Node built-ins.' },
            { group: ['fs', 'path', 'crypto', 'http', 'https', 'net', 'os', 'child_process', 'got', 'pg'], message: 'Workflow code must not do I/O.' },
            { group: ['../activities/*', '../cronofy/client*', '../store/*', '../callbacks/*'], message: 'Workflows call activities through proxyActivities only.', allowTypeImports: true },
          ],
        },
      ],
    },
  },
);
