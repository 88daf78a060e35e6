/**
 * Text meant for a model's context window: long output keeps its head and its tail (errors
 * usually show at the end), with a note saying what was left out and how to see the rest.
 */
export function clipForModel(text: string, limitChars: number, what: string): string {
  if (text.length <= limitChars) return text;
  const head = Math.ceil(limitChars * 0.4);
  const tail = limitChars - head;
  const omitted = text.length - head - tail;
  return (
    `${text.slice(0, head)}\n` +
    `[... ${omitted} characters of ${what} omitted here (too long to show whole). ` +
    'Redirect the output to a file and look at parts of it with head, tail, grep or sed -n ...]\n' +
    text.slice(text.length - tail)
  );
}
