// A node:test reporter that writes one JSON line per finished test: its file, name, outcome and
// duration. scripts/security-report.mjs reads it to regenerate SECURITY.md's results table.
export default async function* jsonLines(source) {
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { name, nesting, file, details, skip, todo } = event.data;
    // Suites report too; keep the tests inside them (and top-level tests).
    if (details?.type === 'suite') continue;
    const outcome =
      skip !== undefined && skip !== false
        ? 'skipped'
        : todo
          ? 'todo'
          : event.type === 'test:pass'
            ? 'passed'
            : 'failed';
    yield `${JSON.stringify({ file, name, nesting, outcome, ms: Math.round(details?.duration_ms ?? 0) })}\n`;
  }
}
