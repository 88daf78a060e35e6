import { test } from 'node:test';
import assert from 'node:assert/strict';
import { currentConfigSection, renderConfigSection } from '../scripts/config-docs.js';

test("the README's configuration tables match the settings in the code", () => {
  assert.equal(
    currentConfigSection(),
    renderConfigSection(),
    'run `node --import tsx scripts/config-docs.ts` to regenerate them',
  );
});
