/**
 * A TCP proxy in front of an API server, for transport faults in end-to-end tests: `pause()` cuts every open
 * connection (watches included) and refuses new ones until `resume()`, while the server itself keeps running, so
 * a test can change objects behind the controller's back (through its own direct connection) and decide exactly
 * when the controller may reconnect. TLS passes through untouched.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

export class TcpProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #paused = false;
  port = 0;

  constructor(targetPort: number, targetHost = "127.0.0.1") {
    this.#server = createServer((client) => {
      if (this.#paused) {
        client.destroy();
        return;
      }
      const upstream = connect(targetPort, targetHost);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on("close", () => this.#sockets.delete(s));
        s.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    const address = this.#server.address();
    this.port = typeof address === "object" && address ? address.port : 0;
    return this.port;
  }

  pause(): void {
    this.#paused = true;
    for (const s of this.#sockets) s.destroy();
  }

  resume(): void {
    this.#paused = false;
  }

  async close(): Promise<void> {
    this.pause();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
