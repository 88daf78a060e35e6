// Type-aware linting: what STYLE.md forbids in prose, the linter forbids here.
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      '.sandpool/**',
      'eslint.config.js',
      '**/*.mjs',
      'clients/**',
      // A one-line shim that loads the compiled CLI; it is in no tsconfig.
      'packages/server/bin/**',
    ],
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's describe/test return promises the runner itself awaits.
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      // Fastify plugins and handlers are async by contract, with or without an await inside.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'dockerode', message: 'Only the Docker runtime adapter may import dockerode.' },
            { name: 'ioredis', message: 'Only the Redis adapter may import ioredis.' },
          ],
        },
      ],
    },
  },
  {
    files: ['packages/server/src/runtime/docker/**/*.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: ['packages/server/src/redis/**/*.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
