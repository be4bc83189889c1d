import net from 'node:net';

/**
 * A TCP relay that keeps every byte it carries, both ways: put it in front of a server to see exactly what crossed
 * the wire (the federation tests scan it for patient-level values). Plain TCP, so it records whatever protocol runs
 * over it; the tests speak HTTP to it, through the proxy.
 */
export interface TcpRecorder {
  port: number;
  /** Everything clients sent and the server answered, in arrival order per connection. */
  bytes(): Buffer;
  /** Connections carried so far. */
  connections(): number;
  close(): Promise<void>;
}

export async function startTcpRecorder(target: { host: string; port: number }, listenHost = '127.0.0.1'): Promise<TcpRecorder> {
  const chunks: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (data: Buffer) => {
      chunks.push(Buffer.from(data));
      upstream.write(data);
    });
    upstream.on('data', (data: Buffer) => {
      chunks.push(Buffer.from(data));
      client.write(data);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    bytes: () => Buffer.concat(chunks),
    connections: () => connections,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
