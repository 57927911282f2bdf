/**
 * Which way imports may point (`npm run lint` runs it; test/layers.test.ts shows it failing on wrong-way imports).
 * Inner layers know nothing of outer ones: the Cronofy client nothing of Temporal, workflows nothing of I/O, the
 * service nothing of its tests, benchmarks or simulator, and a backend's client entry point nothing of the worker.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'A cycle makes two modules one: neither can be read, tested or loaded without the other.',
      severity: 'error',
      from: { path: '^(src|simulator|harness)/' },
      to: { circular: true },
    },
    {
      name: 'cronofy-without-temporal',
      comment: 'src/cronofy is the Cronofy HTTP client: callers map its errors onto Temporal, it does not.',
      severity: 'error',
      from: { path: '^src/cronofy/' },
      to: { path: '@temporalio/' },
    },
    {
      name: 'workflows-without-io',
      comment: 'Workflow code is replayed in a sandbox: it reaches I/O through activities only (types are fine).',
      severity: 'error',
      from: { path: '^src/workflows/' },
      to: {
        path: '^src/(activities|store|callbacks|cronofy/client|simulator|observability)/|^src/[^/]+\\.ts$',
        dependencyTypesNot: ['type-only'],
      },
    },
    {
      name: 'workflows-without-node',
      severity: 'error',
      from: { path: '^src/workflows/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'service-without-simulator',
      comment: 'The simulator stands in for Cronofy; only the entry points that start one may know it.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(main|demo|services)\\.ts$' },
      to: { path: '^simulator/' },
    },
    {
      name: 'simulator-without-service',
      comment: 'The simulator is Cronofy as the service sees it from outside: it knows nothing of the service.',
      severity: 'error',
      from: { path: '^simulator/' },
      to: { path: '^(src|harness|test|bench|scripts)/' },
    },
    {
      name: 'service-without-tests',
      severity: 'error',
      from: { path: '^(src|harness)/' },
      to: { path: '^(test|bench|scripts)/' },
    },
    {
      name: 'bench-and-scripts-without-tests',
      comment: 'What the tests, benchmarks and scripts share lives in harness/.',
      severity: 'error',
      from: { path: '^(bench|scripts)/' },
      to: { path: '^test/' },
    },
    {
      name: 'client-entry-point-stays-light',
      comment:
        'cronofy-downgrade/client is what a backend installs: its modules load no worker, activity, store or ' +
        'driver (types are fine; what workflows/ may load is ruled above; test/package.test.ts checks the package).',
      severity: 'error',
      from: {
        path: '^src/(client\\.ts$|client/|codec/(payloadEncryption|encryptionCodec|failureConverter)\\.ts$)',
      },
      to: {
        path: '^src/(worker|services|main|config|activities/|callbacks/|store/(?!encryption\\.ts$))|^(pg|@electric-sql/pglite|@temporalio/worker)$|node_modules/(pg|@electric-sql/pglite|@temporalio/worker)/',
        dependencyTypesNot: ['type-only'],
      },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
