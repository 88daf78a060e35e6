import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_IN_CONTEXT, sandpoolAgentFiles } from './docker-image-builder.js';

const repo = fileURLToPath(new URL('../../../../../', import.meta.url));
const context = path.join(repo, 'images', 'foundation');

test('the foundation context gets the in-sandbox agent of its repository', async () => {
  const files = sandpoolAgentFiles(context);
  assert.deepEqual(files, {
    [AGENT_IN_CONTEXT]: path.join(repo, 'packages', 'agent', 'sandpool_agent.py'),
  });
  // The Dockerfile copies it from exactly that place, and marks the image as having it.
  const dockerfile = await readFile(path.join(context, 'Dockerfile'), 'utf8');
  assert.match(dockerfile, new RegExp(`^COPY ${AGENT_IN_CONTEXT} `, 'm'));
  assert.match(dockerfile, /^LABEL sandpool\.agent="1"$/m);
});

test('a context outside the repository gets nothing added', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sandpool-context-'));
  try {
    assert.deepEqual(sandpoolAgentFiles(dir), {});
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
