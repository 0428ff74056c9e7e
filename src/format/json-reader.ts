// A bounded, validating JSON pull reader over bytes, for untrusted headers and index files.
// Unlike JSON.parse it keeps integer literals exact (as text), lets callers see duplicate keys,
// reports byte offsets, and can refill from a stream so huge index files need not be in memory.

import { isUtf8 } from 'node:buffer';
import { tcError, type TensorcastError } from '../core/errors.js';
import type { ErrorCode } from '../core/error-codes.js';

/** Options of a {@link JsonReader}. */
export interface JsonReaderOptions {
  /** What is being parsed, for error messages (a file name). */
  readonly what: string;
  /** The code of every syntax error this reader throws. */
  readonly errorCode: ErrorCode;
  /** Called when the current bytes are used up; returns the next chunk or null at the end. */
  readonly refill?: () => Uint8Array | null;
  /** Absolute offset of the first byte, for messages. */
  readonly baseOffset?: number;
  /** Deepest nesting accepted (serde_json's limit is 128). */
  readonly maxDepth?: number;
}

/** A JSON number literal, kept as text so integers beyond 2^53 are never rounded. */
export interface JsonNumber {
  readonly raw: string;
  readonly isInteger: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Pulls JSON tokens from bytes. The grammar is RFC 8259 as serde_json applies it: whitespace is
 * space, tab, CR and LF only; strings may not hold raw control characters or lone surrogates.
 *
 * @example
 * const r = new JsonReader(bytes, { what: 'header', errorCode: 'TC_ERR_FORMAT_INVALID_JSON' });
 * r.beginObject(); for (let k = r.nextKey(); k !== undefined; k = r.nextKey()) r.skipValue();
 * r.end();
 */
export class JsonReader {
  private buf: Buffer;
  private pos = 0;
  private base: number;
  private readonly opts: JsonReaderOptions;
  private readonly maxDepth: number;
  private depth = 0;
  /** Per open container: has it yielded an element yet? */
  private readonly started: boolean[] = [];

  constructor(bytes: Uint8Array, options: JsonReaderOptions) {
    this.buf = asBuffer(bytes);
    this.opts = options;
    this.base = options.baseOffset ?? 0;
    this.maxDepth = options.maxDepth ?? 128;
  }

  /** Absolute byte offset of the next unread byte. */
  get offset(): number {
    return this.base + this.pos;
  }

  /** Builds the syntax error this reader throws, at the current offset unless told otherwise. */
  error(message: string, at = this.offset, code: ErrorCode = this.opts.errorCode): TensorcastError {
    return tcError(code, `${this.opts.what}: ${message} at byte ${at}`, { details: { offset: at } });
  }

  private fill(): boolean {
    if (this.pos < this.buf.length) return true;
    const next = this.opts.refill?.() ?? null;
    if (next === null) return false;
    this.base += this.buf.length;
    this.buf = asBuffer(next);
    this.pos = 0;
    return next.length > 0 || this.fill();
  }

  /** The next byte that is not whitespace, without consuming it; -1 at the end. */
  peek(): number {
    for (;;) {
      if (this.pos >= this.buf.length && !this.fill()) return -1;
      const b = this.buf[this.pos]!;
      if (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) this.pos++;
      else return b;
    }
  }

  private expect(byte: number, what: string): void {
    if (this.peek() !== byte) throw this.unexpected(what);
    this.pos++;
  }

  private unexpected(expected: string): TensorcastError {
    const b = this.peek();
    const got = b < 0 ? 'end of input' : b >= 0x20 && b < 0x7f ? `'${String.fromCharCode(b)}'` : `byte 0x${b.toString(16)}`;
    return this.error(`expected ${expected}, found ${got}`);
  }

  private enter(): void {
    if (++this.depth > this.maxDepth) throw this.error(`nesting deeper than ${this.maxDepth}`);
    this.started.push(false);
  }

  private leave(): void {
    this.depth--;
    this.started.pop();
  }

  /** Consumes `{`. Then call {@link nextKey} until it returns undefined. */
  beginObject(): void {
    this.expect(0x7b, "'{'");
    this.enter();
  }

  /** The next key of the open object (its `:` consumed), or undefined after consuming `}`. */
  nextKey(): string | undefined {
    const top = this.started.length - 1;
    const b = this.peek();
    if (b === 0x7d) {
      this.pos++;
      this.leave();
      return undefined;
    }
    if (this.started[top]) {
      if (b !== 0x2c) throw this.unexpected("',' or '}'");
      this.pos++;
      this.peek();
    }
    this.started[top] = true;
    if (this.peek() !== QUOTE) throw this.unexpected('a string key');
    const key = this.readString();
    this.expect(0x3a, "':'");
    return key;
  }

  /** Consumes `[`. Then call {@link nextItem} before each element until it returns false. */
  beginArray(): void {
    this.expect(0x5b, "'['");
    this.enter();
  }

  /** True when another element follows (its `,` consumed); false after consuming `]`. */
  nextItem(): boolean {
    const top = this.started.length - 1;
    const b = this.peek();
    if (b === 0x5d) {
      this.pos++;
      this.leave();
      return false;
    }
    if (this.started[top]) {
      if (b !== 0x2c) throw this.unexpected("',' or ']'");
      this.pos++;
    }
    this.started[top] = true;
    return true;
  }

  /** Kind of the next value: 'object', 'array', 'string', 'number', 'boolean', 'null' or 'end'. */
  peekKind(): 'object' | 'array' | 'string' | 'number' | 'boolean' | 'null' | 'end' | 'invalid' {
    const b = this.peek();
    if (b === 0x7b) return 'object';
    if (b === 0x5b) return 'array';
    if (b === QUOTE) return 'string';
    if (b === 0x2d || (b >= 0x30 && b <= 0x39)) return 'number';
    if (b === 0x74 || b === 0x66) return 'boolean';
    if (b === 0x6e) return 'null';
    return b < 0 ? 'end' : 'invalid';
  }

  /** Reads a string value. */
  readString(): string {
    this.expect(QUOTE, 'a string');
    let start = this.pos;
    const buf0 = this.buf;
    // Fast path: the whole string in this chunk, no escapes.
    for (let i = start; i < buf0.length; i++) {
      const b = buf0[i]!;
      if (b === QUOTE) {
        this.pos = i + 1;
        return decodeUtf8(buf0, start, i, this, this.base + start);
      }
      if (b === BACKSLASH || b < 0x20) break;
    }
    const parts: string[] = [];
    let raw: Uint8Array[] = [];
    const flushRaw = (): void => {
      if (raw.length === 0) return;
      const joined = raw.length === 1 ? asBuffer(raw[0]!) : Buffer.concat(raw);
      parts.push(decodeUtf8(joined, 0, joined.length, this, this.offset));
      raw = [];
    };
    for (;;) {
      if (this.pos >= this.buf.length) {
        if (start < this.buf.length) raw.push(this.buf.slice(start));
        if (!this.fill()) throw this.error('unterminated string');
        start = this.pos;
      }
      const b = this.buf[this.pos]!;
      if (b === QUOTE) {
        raw.push(this.buf.subarray(start, this.pos));
        this.pos++;
        flushRaw();
        return parts.join('');
      }
      if (b < 0x20) throw this.error('control character in string');
      if (b === BACKSLASH) {
        raw.push(this.buf.subarray(start, this.pos));
        flushRaw();
        this.pos++;
        parts.push(this.readEscape());
        start = this.pos;
        continue;
      }
      this.pos++;
    }
  }

  private nextRawByte(): number {
    if (this.pos >= this.buf.length && !this.fill()) throw this.error('unterminated string');
    return this.buf[this.pos++]!;
  }

  private readEscape(): string {
    const at = this.offset - 1;
    const c = this.nextRawByte();
    switch (c) {
      case QUOTE:
        return '"';
      case BACKSLASH:
        return '\\';
      case 0x2f:
        return '/';
      case 0x62:
        return '\b';
      case 0x66:
        return '\f';
      case 0x6e:
        return '\n';
      case 0x72:
        return '\r';
      case 0x74:
        return '\t';
      case 0x75: {
        const hi = this.readHex4();
        if (hi >= 0xdc00 && hi <= 0xdfff) throw this.error('lone trailing surrogate in \\u escape', at);
        if (hi < 0xd800 || hi > 0xdbff) return String.fromCharCode(hi);
        if (this.nextRawByte() !== BACKSLASH || this.nextRawByte() !== 0x75) {
          throw this.error('lone leading surrogate in \\u escape', at);
        }
        const lo = this.readHex4();
        if (lo < 0xdc00 || lo > 0xdfff) throw this.error('invalid surrogate pair in \\u escape', at);
        return String.fromCharCode(hi, lo);
      }
      default:
        throw this.error('invalid escape in string', at);
    }
  }

  private readHex4(): number {
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.nextRawByte();
      const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 87 : c >= 0x41 && c <= 0x46 ? c - 55 : -1;
      if (d < 0) throw this.error('invalid \\u escape');
      v = v * 16 + d;
    }
    return v;
  }

  /** Reads a number literal, validating the JSON grammar; the text is kept exact. */
  readNumber(): JsonNumber {
    if (this.peekKind() !== 'number') throw this.unexpected('a number');
    const at = this.offset;
    let raw = '';
    let isInteger = true;
    const take = (): number => {
      if (this.pos >= this.buf.length && !this.fill()) return -1;
      return this.buf[this.pos]!;
    };
    const digits = (): number => {
      let n = 0;
      for (let c = take(); c >= 0x30 && c <= 0x39; c = take()) {
        raw += String.fromCharCode(c);
        this.pos++;
        n++;
      }
      return n;
    };
    if (take() === 0x2d) {
      raw += '-';
      this.pos++;
    }
    const first = take();
    if (first === 0x30) {
      raw += '0';
      this.pos++;
    } else if (digits() === 0) throw this.error('invalid number', at);
    if (take() === 0x2e) {
      raw += '.';
      this.pos++;
      isInteger = false;
      if (digits() === 0) throw this.error('invalid number', at);
    }
    const e = take();
    if (e === 0x65 || e === 0x45) {
      raw += 'e';
      this.pos++;
      isInteger = false;
      const s = take();
      if (s === 0x2b || s === 0x2d) {
        raw += String.fromCharCode(s);
        this.pos++;
      }
      if (digits() === 0) throw this.error('invalid number', at);
    }
    const after = take();
    if (after >= 0x30 && after <= 0x39) throw this.error('invalid number (leading zero)', at);
    return { raw, isInteger };
  }

  /**
   * Reads an unsigned integer that must be a JS safe integer. A non-integer, a negative number or
   * one above u64 throws `badCode`; one within u64 but above 2^53-1 throws TC_ERR_FORMAT_UNSAFE_INTEGER.
   */
  readSafeUnsigned(field: string, badCode: ErrorCode): number {
    const at = this.offset;
    // Fast path: plain digits inside this chunk, no fraction or exponent, below 2^53.
    const buf = this.buf;
    let i = this.pos;
    let v = 0;
    while (i < buf.length) {
      const c = buf[i]!;
      if (c < 0x30 || c > 0x39) break;
      v = v * 10 + (c - 0x30);
      i++;
    }
    const digits = i - this.pos;
    const next = i < buf.length ? buf[i]! : -1;
    if (
      digits > 0 &&
      digits < 16 &&
      next !== -1 &&
      next !== 0x2e &&
      next !== 0x65 &&
      next !== 0x45 &&
      !(buf[this.pos] === 0x30 && digits > 1)
    ) {
      this.pos = i;
      return v;
    }
    const n = this.readNumber();
    if (!n.isInteger || n.raw.startsWith('-')) {
      throw this.error(`${field}: expected a non-negative integer, found ${n.raw}`, at, badCode);
    }
    const big = BigInt(n.raw);
    if (big > 0xffff_ffff_ffff_ffffn) throw this.error(`${field}: ${n.raw} exceeds u64`, at, badCode);
    if (big > MAX_SAFE) {
      throw this.error(`${field}: ${n.raw} exceeds 2^53-1 and cannot be held exactly`, at, 'TC_ERR_FORMAT_UNSAFE_INTEGER');
    }
    return Number(big);
  }

  /** Reads `true`, `false` or `null`. */
  readLiteral(): boolean | null {
    const b = this.peek();
    const word = b === 0x74 ? 'true' : b === 0x66 ? 'false' : b === 0x6e ? 'null' : '';
    if (word === '') throw this.unexpected('a value');
    for (let i = 0; i < word.length; i++) {
      if (this.nextRawByteOrEnd() !== word.charCodeAt(i)) throw this.error(`invalid literal, expected ${word}`);
    }
    return word === 'null' ? null : word === 'true';
  }

  private nextRawByteOrEnd(): number {
    if (this.pos >= this.buf.length && !this.fill()) return -1;
    return this.buf[this.pos++]!;
  }

  /** Reads and discards one whole value of any kind, still validating it. */
  skipValue(): void {
    switch (this.peekKind()) {
      case 'object':
        this.beginObject();
        while (this.nextKey() !== undefined) this.skipValue();
        return;
      case 'array':
        this.beginArray();
        while (this.nextItem()) this.skipValue();
        return;
      case 'string':
        this.readString();
        return;
      case 'number':
        this.readNumber();
        return;
      case 'boolean':
      case 'null':
        this.readLiteral();
        return;
      case 'end':
      case 'invalid':
        throw this.unexpected('a value');
    }
  }

  /** Requires that only whitespace remains. */
  end(): void {
    if (this.peek() !== -1) throw this.error('trailing characters after the JSON value');
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

function decodeUtf8(bytes: Buffer, start: number, end: number, reader: JsonReader, at: number): string {
  let ascii = true;
  for (let i = start; i < end; i++) {
    if (bytes[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return bytes.toString('latin1', start, end);
  if (!isUtf8(bytes.subarray(start, end))) throw reader.error('string is not valid UTF-8', at, 'TC_ERR_FORMAT_INVALID_UTF8');
  return bytes.toString('utf8', start, end);
}
