// One raw control-API request with the daemon's bearer token (and optional extra headers): status and JSON.

import { request } from 'node:http';

/** What came back. */
export interface HttpAnswer {
  readonly status: number;
  readonly json: unknown;
}

/** Sends `method path` with `body` as JSON; the path is sent as given. */
export function controlRequest(
  d: { readonly controlUrl: string; readonly token: string },
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<HttpAnswer> {
  const url = new URL(d.controlUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: { authorization: `Bearer ${d.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text === '' ? undefined : (JSON.parse(text) as unknown) }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** The error code of an error answer. */
export const errorCode = (json: unknown): unknown => (json as { error?: { code?: unknown } } | undefined)?.error?.code;
