// A data-plane server written from the protocol alone, whose answers to LOAD the test decides: a hostile or
// failing peer for the receiving side's tests.

import { createServer, type Server, type Socket } from 'node:net';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { FrameType, type FrameHeader } from '../../src/protocol/frames.js';
import { Load, Welcome, type LoadBody } from '../../src/protocol/messages.js';

/** What the fake server saw on one connection, and how it answers each LOAD. */
export interface PeerLog {
  loads: LoadBody[];
  cancels: number;
  closes: number;
}

export type OnLoad = (socket: Socket, requestId: number, load: LoadBody, log: PeerLog) => void;

/** A data-plane server written from the protocol alone, whose LOAD answers the test decides. */
export async function fakeServer(onLoad: OnLoad): Promise<{ address: string; log: PeerLog; server: Server }> {
  const log: PeerLog = { loads: [], cancels: 0, closes: 0 };
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.on('close', () => log.closes++);
    const decoder = new FrameDecoder({
      maxDataBytes: 0,
      onFrame: (h: FrameHeader, payload) => {
        if (h.type === FrameType.HELLO) socket.write(Welcome.encode(0, { daemonId: 'fake', version: 1, frameBytes: 1 << 20 }));
        else if (h.type === FrameType.LOAD) {
          const body = Load.decode(payload);
          log.loads.push(body);
          onLoad(socket, h.requestId, body, log);
        } else if (h.type === FrameType.CANCEL) log.cancels++;
      },
    });
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { address: `127.0.0.1:${port}`, log, server };
}
