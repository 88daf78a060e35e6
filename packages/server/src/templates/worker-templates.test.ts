import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadWorkerConfig } from '../config/worker-config.js';
import { SandpoolError } from '../errors/sandpool-error.js';
import { workerTemplates } from './worker-templates.js';

test('by default a worker pools base at --pool-size from --image, and one code interpreter', () => {
  const config = loadWorkerConfig({ poolSize: '3', image: 'sandpool/sandbox:mine' }, {});
  assert.equal(config.templates, undefined);
  assert.deepEqual(workerTemplates(config), [
    { name: 'base', poolSize: 3, image: 'sandpool/sandbox:mine' },
    { name: 'code-interpreter', poolSize: 1, image: 'sandpool/template-code-interpreter:latest' },
  ]);
});

test('SANDPOOL_TEMPLATES is read, and --templates wins over it', () => {
  const fromEnv = loadWorkerConfig({}, { SANDPOOL_TEMPLATES: 'base=2,code-interpreter=2' });
  assert.deepEqual(
    workerTemplates(fromEnv).map((t) => [t.name, t.poolSize]),
    [
      ['base', 2],
      ['code-interpreter', 2],
    ],
  );
  const fromFlag = loadWorkerConfig(
    { templates: 'code-interpreter=4' },
    { SANDPOOL_TEMPLATES: 'base=2' },
  );
  assert.deepEqual(
    workerTemplates(fromFlag).map((t) => [t.name, t.poolSize]),
    [['code-interpreter', 4]],
  );
});

test('the templates are read when the worker starts, so a later --pool-size still sizes base', () => {
  const config = { ...loadWorkerConfig({}, { SANDPOOL_TEMPLATES: 'base' }), poolSize: 7 };
  assert.equal(workerTemplates(config)[0]?.poolSize, 7);
});

test('a bad --templates is a configuration error naming the problem', () => {
  assert.throws(
    () => loadWorkerConfig({ templates: 'base=1,base=2' }, {}),
    (error: unknown) =>
      error instanceof SandpoolError && /--templates names base twice/.test(error.message),
  );
  assert.throws(() => loadWorkerConfig({ templates: 'x=99' }, {}), /exceeds --pool-max \(20\)/);
});
