// A compact reporter for node's test runner (`--test-reporter`): one line per test file, every skip with
// its reason, every failure in full (error, stack, and the file's output), then node's closing lines
// (`# tests N`, `# pass N`, ...) and one summary line `tests: N passed, N failed, N skipped`.
import { relative } from 'node:path';
import { inspect } from 'node:util';

const color = process.stdout.isTTY === true && process.env.NO_COLOR === undefined;
/** @param {string} code @param {string} text */
const paint = (code, text) => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
/** @param {string | undefined} file */
const short = (file) => (file === undefined ? '?' : relative(process.cwd(), file));
/** @param {number} ms */
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
/** @param {string} text @param {string} pad */
const indent = (text, pad) =>
  text
    .split('\n')
    .map((l) => pad + l)
    .join('\n');

/**
 * @typedef {{ failed: number, output: string[], shown: number }} FileState
 * @typedef {{ failureType?: string, cause?: unknown }} EventError
 * @typedef {{ type?: string, duration_ms?: number, passed?: boolean, error?: EventError }} EventDetails
 * @typedef {{ name?: string, file?: string, line?: number, column?: number, nesting?: number,
 *   message?: string, skip?: string | boolean, todo?: string | boolean, details?: EventDetails }} EventData
 * @param {AsyncIterable<{ type: string, data: EventData }>} source
 */
export default async function* compactReporter(source) {
  /** @type {Map<string, FileState>} */
  const files = new Map();
  /** @type {string[]} */
  const closing = [];
  /** @param {string | undefined} file */
  const stateOf = (file) => {
    const key = file ?? '?';
    let s = files.get(key);
    if (s === undefined) files.set(key, (s = { failed: 0, output: [], shown: 0 }));
    return s;
  };
  /** The file's output not printed yet (printed with its failures only). @param {FileState} s */
  const unshownOutput = (s) => {
    const text = s.output.slice(s.shown).join('');
    s.shown = s.output.length;
    return text === '' ? '' : `${paint('2', '  output of the file:')}\n${indent(text.trimEnd(), '  | ')}\n`;
  };
  for await (const { type, data } of source) {
    const isFileLevel = data?.file !== undefined && data?.name === data.file;
    switch (type) {
      case 'test:stdout':
      case 'test:stderr': {
        const s = stateOf(data.file);
        s.output.push(data.message ?? '');
        if (s.failed > 0) yield unshownOutput(s);
        break;
      }
      case 'test:pass': {
        if (isFileLevel || data.details?.type === 'suite') break;
        if (data.skip !== undefined || data.todo !== undefined) {
          const reason = data.skip ?? data.todo;
          const what = data.skip !== undefined ? 'skipped' : 'todo';
          yield `${paint('33', `  - ${what}`)} ${data.name ?? '?'}${typeof reason === 'string' ? `: ${reason}` : ''} (${short(data.file)})\n`;
        }
        break;
      }
      case 'test:fail': {
        const error = data.details?.error;
        if (data.details?.type === 'suite' || error?.failureType === 'subtestsFailed') break;
        const s = stateOf(data.file);
        s.failed++;
        const where = data.line === undefined ? short(data.file) : `${short(data.file)}:${data.line}:${data.column ?? 0}`;
        const shown = error?.cause ?? error;
        yield (
          `${paint('31', `  ✖ FAIL ${data.name ?? '?'}`)} (${where})\n` +
          `${indent(inspect(shown, { depth: 6, colors: color }), '    ')}\n` +
          unshownOutput(s)
        );
        break;
      }
      case 'test:diagnostic':
        if (data.file === undefined && data.nesting === 0) closing.push(data.message ?? '');
        else yield `${paint('2', '  note')} ${data.message ?? ''} (${short(data.file)})\n`;
        break;
      case 'test:complete':
        // One line per file, without per-file counts: with several files at once node may report a file's
        // tests after the file itself completed; the totals come from node's own closing lines below.
        if (isFileLevel) {
          const s = stateOf(data.file);
          const ok = s.failed === 0 && data.details?.passed !== false && data.details?.error === undefined;
          const took = data.details?.duration_ms === undefined ? '' : ` (${secs(data.details.duration_ms)})`;
          yield `${ok ? paint('32', 'ok  ') : paint('31', 'FAIL')} ${short(data.file)}${took}\n`;
        }
        break;
      default:
        break;
    }
  }
  /** @type {Record<string, number>} */
  const count = {};
  for (const line of closing) {
    const [key, value] = line.split(' ');
    if (key !== undefined && value !== undefined) count[key] = Number(value);
  }
  const extra = ['cancelled', 'todo'].filter((k) => (count[k] ?? 0) > 0).map((k) => `, ${count[k]} ${k}`);
  yield (
    `\n${closing.map((l) => `# ${l}`).join('\n')}\n` +
    `tests: ${count.pass ?? 0} passed, ${count.fail ?? 0} failed, ${count.skipped ?? 0} skipped${extra.join('')}\n`
  );
}
