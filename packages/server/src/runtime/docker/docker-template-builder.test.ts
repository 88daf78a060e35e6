import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { stageTagOf, startsFromBaseImage } from './docker-template-builder.js';

test('a Dockerfile whose last stage is FROM ${BASE_IMAGE} builds on the foundation', () => {
  assert.equal(startsFromBaseImage('ARG BASE_IMAGE=x\nFROM ${BASE_IMAGE}\nRUN true\n'), true);
  assert.equal(startsFromBaseImage('ARG BASE_IMAGE\nfrom $BASE_IMAGE\n'), true);
  assert.equal(startsFromBaseImage('FROM --platform=linux/amd64 ${BASE_IMAGE}\n'), true);
  assert.equal(startsFromBaseImage('FROM node:20 AS build\nFROM ${BASE_IMAGE}\n'), true);
});

test('any other FROM gets the foundation laid over it', () => {
  assert.equal(startsFromBaseImage('FROM node:20-bookworm\nRUN true\n'), false);
  assert.equal(startsFromBaseImage('FROM ${BASE_IMAGE} AS b\nFROM debian:bookworm\n'), false);
  assert.equal(startsFromBaseImage('# FROM ${BASE_IMAGE}\nFROM python:3.12\n'), false);
  assert.equal(startsFromBaseImage('RUN echo no from\n'), false);
});

test('the shipped base template starts from the foundation', async () => {
  const dockerfile = fileURLToPath(
    new URL('../../../../../images/templates/base/Dockerfile', import.meta.url),
  );
  assert.equal(startsFromBaseImage(await readFile(dockerfile, 'utf8')), true);
});

test('stage tags sit beside the template tag', () => {
  assert.equal(stageTagOf('sandpool/template-x:latest'), 'sandpool/template-x:latest-stage');
  assert.equal(stageTagOf('registry:5000/x'), 'registry:5000/x:latest-stage');
  assert.equal(stageTagOf('x'), 'x:latest-stage');
});
