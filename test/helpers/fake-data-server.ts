// A data-plane server written from the protocol alone, whose answers to LOAD (and to object PUT and GET)
// the test decides: a hostile or failing peer for the receiving side's tests.

import { createServer, type Server, type Socket } from 'node:net';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { FrameType, MAX_DATA_BYTES, type FrameHeader } from '../../src/protocol/frames.js';
import { Get, Load, Put, Welcome, type GetBody, type LoadBody, type PutBody } from '../../src/protocol/messages.js';

/** What the fake server saw on one connection, and how it answers each LOAD. */
export interface PeerLog {
  loads: LoadBody[];
  puts: PutBody[];
  gets: GetBody[];
  /** Credit the client granted back (GET). */
  credit: number;
  cancels: number;
  closes: number;
}

export type OnLoad = (socket: Socket, requestId: number, load: LoadBody, log: PeerLog) => void;

/** How the fake server answers object requests (each optional). */
export interface ObjectAnswers {
  onPut?: (socket: Socket, requestId: number, put: PutBody, log: PeerLog) => void;
  onGet?: (socket: Socket, requestId: number, get: GetBody, log: PeerLog) => void;
  /** A DATA frame the client sent (a PUT's bytes), with its payload and whether its CRC32C matched. */
  onData?: (socket: Socket, header: FrameHeader, payload: Uint8Array, checksumOk: boolean, log: PeerLog) => void;
  /** The largest DATA frame announced in WELCOME (default 1 MiB). */
  frameBytes?: number;
}

/** A data-plane server written from the protocol alone, whose LOAD (and PUT/GET) answers the test decides. */
export async function fakeServer(onLoad: OnLoad, objects: ObjectAnswers = {}): Promise<{ address: string; log: PeerLog; server: Server }> {
  const log: PeerLog = { loads: [], puts: [], gets: [], credit: 0, cancels: 0, closes: 0 };
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.on('close', () => log.closes++);
    const decoder = new FrameDecoder({
      maxDataBytes: MAX_DATA_BYTES,
      sink: (h) => Buffer.allocUnsafe(h.length),
      onFrame: (h: FrameHeader, payload, ok) => {
        if (h.type === FrameType.HELLO)
          socket.write(Welcome.encode(0, { daemonId: 'fake', version: 1, frameBytes: objects.frameBytes ?? 1 << 20 }));
        else if (h.type === FrameType.LOAD) {
          const body = Load.decode(payload);
          log.loads.push(body);
          onLoad(socket, h.requestId, body, log);
        } else if (h.type === FrameType.PUT) {
          const body = Put.decode(payload);
          log.puts.push(body);
          objects.onPut?.(socket, h.requestId, body, log);
        } else if (h.type === FrameType.GET) {
          const body = Get.decode(payload);
          log.gets.push(body);
          objects.onGet?.(socket, h.requestId, body, log);
        } else if (h.type === FrameType.DATA) objects.onData?.(socket, h, payload, ok, log);
        else if (h.type === FrameType.CREDIT) log.credit += h.offset;
        else if (h.type === FrameType.CANCEL) log.cancels++;
      },
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch {
        socket.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { address: `127.0.0.1:${port}`, log, server };
}
