// A WebSocket peer played by hand over a TCP socket, for the tests of the
// WebSocket transport: it sends any opcode and any message, reads the
// server's frames one by one, and reads nothing unless asked (a slow reader).

import { clientFrame } from "../../transport/_websocket_client.ts";
import { guard } from "./_helpers.ts";

/** What the upgrade request carries. */
export interface UpgradeRequest {
  path?: string;
  /** Sec-WebSocket-Protocol; `null` sends none. */
  protocol?: string | null;
  origin?: string;
  authorization?: string;
}

/** One frame from the server. */
export interface ServerFrame {
  opcode: number;
  payload: Uint8Array;
}

/** A hand-driven WebSocket client. */
export class WsPeer {
  readonly conn: Deno.TcpConn;
  #buf: Uint8Array = new Uint8Array(0);

  private constructor(conn: Deno.TcpConn, rest: Uint8Array) {
    this.conn = conn;
    this.#buf = rest;
  }

  /** Sends the upgrade; the HTTP status, and the peer when it is 101. */
  static async open(
    port: number,
    request: UpgradeRequest = {},
  ): Promise<{ status: number; peer?: WsPeer }> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    const lines = [
      `GET ${request.path ?? "/"} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version: 13",
    ];
    const protocol = request.protocol === undefined ? "streamwire.v1" : request.protocol;
    if (protocol !== null) lines.push(`Sec-WebSocket-Protocol: ${protocol}`);
    if (request.origin) lines.push(`Origin: ${request.origin}`);
    if (request.authorization) lines.push(`Authorization: ${request.authorization}`);
    await conn.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
    let buf: Uint8Array = new Uint8Array(0);
    for (;;) {
      const chunk = new Uint8Array(4096);
      const n = await guard(conn.read(chunk), "the upgrade response");
      if (n === null) throw new Error("Closed during the upgrade");
      const next = new Uint8Array(buf.length + n);
      next.set(buf);
      next.set(chunk.subarray(0, n), buf.length);
      buf = next;
      const text = new TextDecoder().decode(buf);
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) continue;
      const status = Number(text.slice(9, 12));
      if (status !== 101) {
        conn.close();
        return { status };
      }
      return { status, peer: new WsPeer(conn, buf.subarray(end + 4)) };
    }
  }

  /** Writes one masked frame of `opcode` (binary by default). */
  async send(payload: Uint8Array, opcode = 2): Promise<void> {
    const frame = clientFrame(opcode, payload);
    for (let at = 0; at < frame.length;) at += await this.conn.write(frame.subarray(at));
  }

  async #fill(n: number): Promise<boolean> {
    while (this.#buf.length < n) {
      const chunk = new Uint8Array(65536);
      let got: number | null;
      try {
        got = await guard(this.conn.read(chunk), "a frame from the server");
      } catch (error) {
        if (error instanceof Deno.errors.ConnectionReset) return false;
        throw error;
      }
      if (got === null) return false;
      const next = new Uint8Array(this.#buf.length + got);
      next.set(this.#buf);
      next.set(chunk.subarray(0, got), this.#buf.length);
      this.#buf = next;
    }
    return true;
  }

  /** The server's next frame, or null at EOF. */
  async next(): Promise<ServerFrame | null> {
    if (!(await this.#fill(2))) return null;
    let length = this.#buf[1] & 0x7f;
    const head = length === 126 ? 4 : length === 127 ? 10 : 2;
    if (!(await this.#fill(head))) return null;
    const view = new DataView(this.#buf.buffer, this.#buf.byteOffset);
    if (length === 126) length = view.getUint16(2);
    else if (length === 127) length = Number(view.getBigUint64(2));
    if (!(await this.#fill(head + length))) return null;
    const frame = {
      opcode: this.#buf[0] & 0x0f,
      payload: this.#buf.slice(head, head + length),
    };
    this.#buf = this.#buf.subarray(head + length);
    return frame;
  }

  /** Reads until the Close frame; returns its code and the binary payloads before it. */
  async untilClose(): Promise<{ code: number | undefined; binary: Uint8Array[] }> {
    const binary: Uint8Array[] = [];
    for (;;) {
      const frame = await this.next();
      if (frame === null) return { code: undefined, binary };
      if (frame.opcode === 2) binary.push(frame.payload);
      if (frame.opcode === 8) {
        const code = frame.payload.length >= 2
          ? (frame.payload[0] << 8) | frame.payload[1]
          : undefined;
        return { code, binary };
      }
    }
  }

  /** Closes the socket. */
  close(): void {
    try {
      this.conn.close();
    } catch {
      // Closed already.
    }
  }
}
