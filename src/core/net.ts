// Small address helpers shared by the daemon's config checks and the client.

/** True for a loopback host name or address: localhost, ::1, 127.x.y.z. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || h.startsWith('127.');
}
