// Certificates for TLS tests, made with the openssl binary into a temporary folder: a CA, a server certificate
// for localhost/127.0.0.1 signed by it, a client certificate signed by it, and a client certificate signed by
// another CA (which a server trusting only the first must refuse).

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { tempDir } from './tmp.js';

/** A certificate and its key: paths and PEM contents. */
export interface CertPair {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** What {@link makeTestCerts} made. */
export interface TestCerts {
  readonly caFile: string;
  readonly ca: Buffer;
  readonly server: CertPair;
  /** Signed by `ca`. */
  readonly client: CertPair;
  /** Signed by another CA. */
  readonly strangerClient: CertPair;
}

const OPENSSL = process.env['TENSORCAST_OPENSSL'] ?? 'openssl';
const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(args: readonly string[]): void {
  execFileSync(OPENSSL, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  openssl(['req', '-x509', ...KEY, '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`]);
  return { cert, key };
}

function makeSigned(dir: string, name: string, ca: { cert: string; key: string }, extensions: string): CertPair {
  const keyFile = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const certFile = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, `${extensions}\n`);
  openssl(['req', ...KEY, '-keyout', keyFile, '-out', csr, '-subj', `/CN=${name}`]);
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-out',
    certFile,
    '-days',
    '2',
    '-extfile',
    ext,
  ]);
  return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
}

/** Makes the certificates in a temporary folder removed after the test. */
export function makeTestCerts(t: TestContext): TestCerts {
  const dir = tempDir(t, 'tensorcast-tls-');
  const ca = makeCa(dir, 'test-ca');
  const other = makeCa(dir, 'other-ca');
  return {
    caFile: ca.cert,
    ca: readFileSync(ca.cert),
    server: makeSigned(dir, 'localhost', ca, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth'),
    client: makeSigned(dir, 'client', ca, 'extendedKeyUsage=clientAuth'),
    strangerClient: makeSigned(dir, 'stranger', other, 'extendedKeyUsage=clientAuth'),
  };
}
