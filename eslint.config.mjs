// Lint: typescript-eslint's recommended rules plus Nx's module-boundary rule, which is
// what keeps the dependency direction of DESIGN.md true: apps -> libs; training ->
// models, data, collective; models, data and collective import none of each other.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import nx from '@nx/eslint-plugin';

const depConstraints = [
            // infra (service launchers) has no dependencies; specs of every lib may use it.
            { sourceTag: 'scope:infra', onlyDependOnLibsWithTags: [] },
            { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:infra'] },
            { sourceTag: 'scope:models', onlyDependOnLibsWithTags: ['scope:infra'] },
            { sourceTag: 'scope:data', onlyDependOnLibsWithTags: ['scope:infra'] },
            { sourceTag: 'scope:collective', onlyDependOnLibsWithTags: ['scope:infra'] },
            {
              sourceTag: 'scope:training',
              onlyDependOnLibsWithTags: ['scope:models', 'scope:data', 'scope:collective', 'scope:shared', 'scope:infra'],
            },
            {
              sourceTag: 'type:app',
              onlyDependOnLibsWithTags: ['scope:shared', 'scope:models', 'scope:data', 'scope:collective', 'scope:training', 'scope:infra', 'scope:app'],
            },
            { sourceTag: 'type:test', onlyDependOnLibsWithTags: ['*'] },
          ];

export default [
  { ignores: ['**/dist/**', '**/node_modules/**', '.nx/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@nx/enforce-module-boundaries': [
        'error',
        {
          allow: [],
          depConstraints,
        },
      ],
    },
  },
  {
    // The coordinator serves the dashboard's built files (it takes only their folder from it).
    files: ['apps/coordinator/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': ['error', { allow: ['@tensorfleet/dashboard'], depConstraints }],
    },
  },
  {
    // Cross-process tests drive real apps through the CLI's cluster launcher.
    files: ['test/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': ['error', { allow: ['@tensorfleet/cli'], depConstraints }],
    },
  },
];
