// The client sides of the benches' baselines, and the load shapes shared by
// every row: raw framed echo, JSON-RPC 2.0 over the global WebSocket, and a
// pipeline keeping a fixed number of calls in flight.

/** The params of every unary call: 64 bytes. */
export const PAYLOAD: Uint8Array = new Uint8Array(64).map((_, i) => i);
/** The same size as text, for JSON, which has no bytes type. */
export const PAYLOAD_TEXT: string = "x".repeat(64);

/**
 * Runs `total` calls with at most `inFlight` outstanding: each of
 * `inFlight` loops starts a call as soon as its previous one completes.
 *
 * @param total Calls to make.
 * @param inFlight Calls outstanding at once.
 * @param call One call.
 */
export async function pipeline(
  total: number,
  inFlight: number,
  call: () => Promise<unknown>,
): Promise<void> {
  let started = 0;
  const loop = async () => {
    while (started < total) {
      started++;
      await call();
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, total) }, loop));
}

/** Writes all of `bytes`, however many writes it takes. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** Frames of a u32 big-endian length and a payload over a plain TCP socket. */
export class RawClient {
  #conn: Deno.TcpConn;
  #buf = new Uint8Array(256 * 1024);
  #have = 0;
  #frame: Uint8Array;
  #runs = new Map<number, Uint8Array>();

  private constructor(conn: Deno.TcpConn, payload: Uint8Array) {
    this.#conn = conn;
    this.#frame = new Uint8Array(4 + payload.length);
    new DataView(this.#frame.buffer).setUint32(0, payload.length);
    this.#frame.set(payload, 4);
  }

  /**
   * Connects to 127.0.0.1 with Nagle's algorithm off, as streamwire's sockets are.
   *
   * @param port The server's port.
   * @param payload The payload of each frame sent.
   * @returns The client.
   */
  static async connect(port: number, payload: Uint8Array = PAYLOAD): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    return new RawClient(conn, payload);
  }

  /** `n` copies of the frame, back to back, made once per `n`. */
  #run(n: number): Uint8Array {
    let run = this.#runs.get(n);
    if (!run) {
      run = new Uint8Array(n * this.#frame.length);
      for (let i = 0; i < n; i++) run.set(this.#frame, i * this.#frame.length);
      this.#runs.set(n, run);
    }
    return run;
  }

  /** Reads until at least one frame is complete; takes and counts the complete ones. */
  async #take(): Promise<number> {
    for (;;) {
      let end = 0, frames = 0;
      while (this.#have - end >= 4) {
        const length = new DataView(this.#buf.buffer, end).getUint32(0);
        if (this.#have - end < 4 + length) break;
        end += 4 + length;
        frames++;
      }
      if (frames > 0) {
        this.#buf.copyWithin(0, end, this.#have);
        this.#have -= end;
        return frames;
      }
      const n = await this.#conn.read(this.#buf.subarray(this.#have));
      if (n === null) throw new Error("Raw server closed the connection");
      this.#have += n;
    }
  }

  /**
   * One frame out and its echo back, `rounds` times.
   *
   * @param rounds Round trips.
   */
  async pingPong(rounds: number): Promise<void> {
    for (let i = 0; i < rounds; i++) {
      await writeAll(this.#conn, this.#frame);
      await this.#take();
    }
  }

  /**
   * `total` echoed frames with `inFlight` outstanding: every batch of
   * echoes read is answered by as many new frames in one write.
   *
   * @param total Round trips.
   * @param inFlight Frames outstanding at once.
   */
  async pipelined(total: number, inFlight: number): Promise<void> {
    let sent = Math.min(inFlight, total), received = 0;
    await writeAll(this.#conn, this.#run(sent));
    while (received < total) {
      const n = await this.#take();
      received += n;
      const more = Math.min(n, total - sent);
      if (more > 0) {
        sent += more;
        await writeAll(this.#conn, this.#run(more));
      }
    }
  }

  /**
   * Asks a push server (`_raw_push_server.ts`) for `count` frames and reads them.
   *
   * @param count Frames to receive.
   */
  async pull(count: number): Promise<void> {
    const request = new Uint8Array(8);
    const view = new DataView(request.buffer);
    view.setUint32(0, 4);
    view.setUint32(4, count);
    await writeAll(this.#conn, request);
    for (let received = 0; received < count;) received += await this.#take();
  }

  /** Closes the socket. */
  close(): void {
    this.#conn.close();
  }
}

/** JSON-RPC 2.0 over the global WebSocket, answers matched to calls by id. */
export class WsJsonRpcClient {
  #ws: WebSocket;
  #id = 0;
  #waiting = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      for (const answer of Array.isArray(message) ? message : [message]) {
        const waiting = this.#waiting.get(answer.id);
        if (!waiting) continue;
        this.#waiting.delete(answer.id);
        if (answer.error) waiting.reject(new Error(`JSON-RPC error ${answer.error.code}`));
        else waiting.resolve(answer.result);
      }
    };
  }

  /**
   * Opens the WebSocket.
   *
   * @param port The server's port on 127.0.0.1.
   * @returns The client, once open.
   */
  static open(port: number): Promise<WsJsonRpcClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    return new Promise((resolve, reject) => {
      ws.onopen = () => resolve(new WsJsonRpcClient(ws));
      ws.onerror = () => reject(new Error(`WebSocket to port '${port}' failed`));
    });
  }

  /**
   * Calls a method.
   *
   * @param method The method.
   * @param params Its params.
   * @returns The result.
   */
  call(method: string, params: unknown): Promise<unknown> {
    const id = ++this.#id;
    this.#ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    return new Promise((resolve, reject) => this.#waiting.set(id, { resolve, reject }));
  }

  /** Closes the WebSocket. */
  close(): void {
    this.#ws.close();
  }
}
