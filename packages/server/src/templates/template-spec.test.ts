import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE_TEMPLATE_IMAGE,
  defaultTemplateImage,
  defaultTemplatesSpec,
  parseTemplatesSpec,
  templateNameProblem,
} from './template-spec.js';

const defaults = { basePoolSize: 5, baseImage: 'sandpool/sandbox:latest', maxPoolSize: 20 };

test('the default spec is base at --pool-size plus one code interpreter', () => {
  assert.equal(defaultTemplatesSpec(5), 'base=5,code-interpreter=1');
  assert.deepEqual(parseTemplatesSpec(defaultTemplatesSpec(3), defaults), [
    { name: 'base', poolSize: 3, image: 'sandpool/sandbox:latest' },
    { name: 'code-interpreter', poolSize: 1, image: 'sandpool/template-code-interpreter:latest' },
  ]);
});

test('counts, images and spaces are read per entry', () => {
  assert.deepEqual(
    parseTemplatesSpec(' base=2 , code-interpreter=0, data@reg.local:5000/d:1 ', defaults),
    [
      { name: 'base', poolSize: 2, image: 'sandpool/sandbox:latest' },
      { name: 'code-interpreter', poolSize: 0, image: 'sandpool/template-code-interpreter:latest' },
      { name: 'data', poolSize: 1, image: 'reg.local:5000/d:1' },
    ],
  );
});

test('base without a count follows --pool-size and --image', () => {
  const custom = { ...defaults, basePoolSize: 7, baseImage: 'sandpool/sandbox:mine' };
  assert.deepEqual(parseTemplatesSpec('base', custom), [
    { name: 'base', poolSize: 7, image: 'sandpool/sandbox:mine' },
  ]);
  assert.deepEqual(parseTemplatesSpec('base=1@other/base:2', custom), [
    { name: 'base', poolSize: 1, image: 'other/base:2' },
  ]);
});

test('a worker may serve templates without base', () => {
  assert.deepEqual(
    parseTemplatesSpec('code-interpreter=2', defaults).map((t) => t.name),
    ['code-interpreter'],
  );
});

for (const [spec, message] of [
  ['', /lists no template/],
  [',,', /lists no template/],
  ['base=5,base=1', /names base twice/],
  ['Base=1', /lowercase/],
  ['-x=1', /lowercase/],
  ['a_b=1', /lowercase/],
  ['base=-1', /whole number/],
  ['base=two', /whole number/],
  ['base=1.5', /whole number/],
  ['base=21', /exceeds --pool-max \(20\)/],
  ['x=1@bad image', /not an image name/],
  ['x=1@', /not an image name/],
] as const) {
  test(`refuses ${JSON.stringify(spec)}`, () => {
    assert.throws(() => parseTemplatesSpec(spec, defaults), message);
  });
}

test('template names', () => {
  for (const good of ['base', 'code-interpreter', 'a', 'x9', 'my-data-2']) {
    assert.equal(templateNameProblem(good), undefined, good);
  }
  for (const bad of ['', 'A', 'a-', '-a', 'a b', 'a/b', 'x'.repeat(49), '../etc']) {
    assert.notEqual(templateNameProblem(bad), undefined, bad);
  }
});

test('image names: base keeps the historical tag, others are sandpool/template-NAME', () => {
  assert.equal(defaultTemplateImage('base'), BASE_TEMPLATE_IMAGE);
  assert.equal(
    defaultTemplateImage('code-interpreter'),
    'sandpool/template-code-interpreter:latest',
  );
});
