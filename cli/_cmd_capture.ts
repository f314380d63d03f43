// `streamwire capture`: a TCP proxy that passes bytes through untouched in
// both directions and records every frame of both on stdout, as frames or
// as NDJSON with the connection, direction and offset of each.

import { StreamwireError } from "../codec/error.ts";
import type { PayloadCodec } from "../codec/payload_codec.ts";
import { CliError, type CliIo, type Command, usage } from "./_command.ts";
import { codecFlag, frameMessage, maxFrameFlag } from "./_cmd_frames.ts";
import { type FrameAt, frameBytes, OffsetDeframer } from "./_frames_read.ts";
import { messageToJson } from "./frames.ts";

/**
 * Bytes read from a socket at once. A direction holds at most one read in
 * flight: the next read waits until the bytes were written to the other
 * side and recorded, so a slow peer or a slow stdout slows the sender
 * (TCP flow control) instead of growing a buffer.
 */
const READ_SIZE = 64 * 1024;

export const captureCommand: Command = {
  name: "capture",
  summary: "a TCP proxy that records both directions as frames",
  usage: "streamwire capture <listen> <upstream> [--json [--codec NAME]] [options]",
  help: [
    "Listens on <listen>, connects each client to <upstream> and passes the bytes of both",
    "directions through untouched. Every frame of both directions is written to stdout as",
    "it arrives: as frames (read them with 'inspect' or 'decode'), or with --json as NDJSON",
    "messages with conn (connection number from 1), dir (c2s or s2c) and offset (byte offset",
    "in that direction), which 'encode' replays. Bytes that are not frames still pass; the",
    "recording of that direction stops with a line on stderr. The listening address",
    "(port 0 picks a free one) and each connection are reported on stderr. Runs until",
    "SIGINT or SIGTERM, then closes its listener and connections and exits 0.",
    "",
    "Addresses: tcp://host:port, host:port, :port or a port (on 127.0.0.1).",
    "",
    "Options:",
    "  --json             record NDJSON messages instead of frames",
    "  --codec NAME       with --json, params, data and results as JSON values of this",
    "                     codec (json, msgpack, cbor) instead of hex",
    "  --max-frame BYTES  largest frame body recorded (default 16777216)",
    "",
    "Examples:",
    "  streamwire capture 127.0.0.1:9100 tcp://127.0.0.1:9000 > session.bin",
    "  streamwire capture :9100 :9000 --json --codec msgpack | tee session.ndjson",
  ].join("\n"),
  flags: {
    codec: { type: "string" },
    "max-frame": { type: "string" },
  },
  positionals: [2, 2],
  async run({ flags, positionals }, io) {
    const json = flags.json === true;
    const codec = codecFlag(flags);
    if (codec !== undefined && !json) throw usage("--codec applies to --json output only");
    const maxFrame = maxFrameFlag(flags);
    const local = tcpAddress(positionals[0], "Listen address", 0);
    const upstream = tcpAddress(positionals[1], "Upstream address", 1);
    let listener: Deno.TcpListener;
    try {
      listener = Deno.listen({ transport: "tcp", hostname: local.hostname, port: local.port });
    } catch (error) {
      throw new CliError(
        "unavailable",
        `Cannot listen on ${formatAddress(local)}: ${message(error)}`,
      );
    }
    const capture = new Capture(io, upstream, { json, codec, maxFrame });
    const stop = () => {
      try {
        listener.close();
      } catch {
        // Already closed.
      }
      capture.closeAll();
    };
    io.signal.addEventListener("abort", stop, { once: true });
    if (io.signal.aborted) stop();
    const addr = listener.addr;
    capture.log(`listening on ${formatAddress(addr)}, upstream ${formatAddress(upstream)}`);
    await io.stderr.flush();
    try {
      for (;;) {
        let conn: Deno.TcpConn;
        try {
          conn = await listener.accept();
        } catch (error) {
          if (io.signal.aborted) break;
          throw new CliError("unavailable", `Accept failed: ${message(error)}`, 1);
        }
        capture.accept(conn);
      }
    } finally {
      io.signal.removeEventListener("abort", stop);
      stop();
      await capture.closed();
      await io.stderr.flush().catch(() => {});
    }
  },
};

interface Address {
  hostname: string;
  port: number;
}

/** Parses `tcp://host:port`, `host:port`, `:port` or `port`; hosts default to 127.0.0.1. */
function tcpAddress(text: string, what: string, minPort: number): Address {
  let spec = text;
  if (/^\d+$/.test(spec)) spec = `:${spec}`;
  if (spec.startsWith(":")) spec = `127.0.0.1${spec}`;
  if (!spec.includes("://")) spec = `tcp://${spec}`;
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    throw usage(`${what} '${text}' is not host:port or tcp://host:port`);
  }
  if (url.protocol !== "tcp:") {
    throw usage(`${what} '${text}' has scheme '${url.protocol.slice(0, -1)}', expected tcp`);
  }
  if (
    url.hostname === "" || (url.pathname !== "" && url.pathname !== "/") || url.search ||
    url.hash || url.username || url.password
  ) {
    throw usage(`${what} '${text}' is not host:port or tcp://host:port`);
  }
  const port = url.port === "" ? NaN : Number(url.port);
  if (!(port >= minPort && port <= 65535)) {
    throw usage(`${what} '${text}' needs a port in ${minPort}..65535`);
  }
  const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  return { hostname, port };
}

function formatAddress(addr: Address | Deno.Addr): string {
  const { hostname, port } = addr as Address;
  return `tcp://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

interface RecordOptions {
  json: boolean;
  codec: PayloadCodec | undefined;
  maxFrame: number;
}

/** The connections of one capture and what they share: stdout, stderr, the upstream. */
class Capture {
  #io: CliIo;
  #upstream: Address;
  #options: RecordOptions;
  #count = 0;
  #sockets = new Set<Deno.TcpConn>();
  #running = new Set<Promise<void>>();
  #closing = false;

  constructor(io: CliIo, upstream: Address, options: RecordOptions) {
    this.#io = io;
    this.#upstream = upstream;
    this.#options = options;
  }

  log(line: string): void {
    this.#io.stderr.line(`capture: ${line}`);
  }

  accept(client: Deno.TcpConn): void {
    const id = ++this.#count;
    const running = this.#serve(id, client).catch((error) => {
      this.log(`conn ${id}: ${message(error)}`);
    }).finally(() => this.#running.delete(running));
    this.#running.add(running);
  }

  /** Closes every connection; their directions then end. */
  closeAll(): void {
    this.#closing = true;
    for (const socket of this.#sockets) close(socket);
  }

  /** Resolves once every connection has ended. */
  async closed(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }

  async #serve(id: number, client: Deno.TcpConn): Promise<void> {
    this.#sockets.add(client);
    const peer = formatAddress(client.remoteAddr);
    let server: Deno.TcpConn;
    try {
      server = await Deno.connect({
        transport: "tcp",
        hostname: this.#upstream.hostname,
        port: this.#upstream.port,
      });
    } catch (error) {
      this.log(
        `conn ${id} from ${peer}: upstream ${formatAddress(this.#upstream)}: ${message(error)}`,
      );
      this.#sockets.delete(client);
      close(client);
      return;
    }
    this.#sockets.add(server);
    if (this.#closing) close(server);
    // The proxy adds no delay of its own to small frames.
    for (const socket of [client, server]) {
      try {
        socket.setNoDelay(true);
      } catch {
        // Closed already: its direction ends at once.
      }
    }
    this.log(`conn ${id} from ${peer}`);
    const [sent, received] = await Promise.all([
      this.#pump(client, server, new Recording(this, id, "c2s")),
      this.#pump(server, client, new Recording(this, id, "s2c")),
    ]);
    this.#sockets.delete(client);
    this.#sockets.delete(server);
    close(client);
    close(server);
    this.log(`conn ${id} closed: c2s ${sent} bytes, s2c ${received} bytes`);
  }

  /** Copies `src` to `dst` until `src` ends; returns the bytes copied. */
  async #pump(src: Deno.TcpConn, dst: Deno.TcpConn, recording: Recording): Promise<number> {
    const buffer = new Uint8Array(READ_SIZE);
    let total = 0;
    try {
      for (;;) {
        const n = await src.read(buffer);
        if (n === null) break;
        // The buffer is read into again only once the chunk was written on and
        // recorded: the recording keeps no view of it (frames are copied out).
        const chunk = buffer.subarray(0, n);
        // Recorded before it is passed on, so that an answer is never recorded before its call.
        const recorded = recording.push(chunk);
        for (let at = 0; at < n;) at += await dst.write(chunk.subarray(at));
        total += n;
        if (recorded !== undefined) await recorded;
      }
      recording.end();
      await dst.closeWrite().catch(() => {});
    } catch {
      // A reset, or the capture stopping: both directions end.
      close(src);
      close(dst);
    }
    return total;
  }

  /** Writes one recorded frame. */
  write(
    id: number,
    dir: "c2s" | "s2c",
    { frame, offset }: FrameAt,
  ): Promise<void> | undefined {
    const { json, codec, maxFrame } = this.#options;
    if (!json) return this.#io.stdout.write(frameBytes(frame));
    const message = frameMessage(frame, maxFrame);
    const line = { conn: id, dir, offset, ...messageToJson(message, { codec }) };
    return this.#io.stdout.line(JSON.stringify(line));
  }

  get maxFrame(): number {
    return this.#options.maxFrame;
  }
}

function close(socket: Deno.TcpConn): void {
  try {
    socket.close();
  } catch {
    // Already closed.
  }
}

/** The recording of one direction of one connection. */
class Recording {
  #capture: Capture;
  #id: number;
  #dir: "c2s" | "s2c";
  #deframer: OffsetDeframer;
  #frames: FrameAt[] = [];
  #stopped = false;

  constructor(capture: Capture, id: number, dir: "c2s" | "s2c") {
    this.#capture = capture;
    this.#id = id;
    this.#dir = dir;
    this.#deframer = new OffsetDeframer(capture.maxFrame);
  }

  /**
   * Records the frames `chunk` completes.
   *
   * @returns A promise to await when stdout's batch is full, else undefined.
   */
  push(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#stopped) return undefined;
    const frames = this.#frames;
    frames.length = 0;
    const failure = this.#deframer.push(chunk, frames);
    let wait: Promise<void> | undefined;
    for (const at of frames) {
      try {
        wait = this.#capture.write(this.#id, this.#dir, at) ?? wait;
      } catch (error) {
        this.#stop(at.offset, StreamwireError.from(error));
        return wait;
      }
    }
    if (failure !== undefined) this.#stop(this.#deframer.position, failure);
    return wait;
  }

  /** The direction ended: a frame cut off at the end is reported. */
  end(): void {
    if (this.#stopped) return;
    const failure = this.#deframer.end();
    if (failure !== undefined) this.#stop(this.#deframer.position, failure);
  }

  #stop(offset: number, error: StreamwireError): void {
    this.#stopped = true;
    this.#capture.log(
      `conn ${this.#id} ${this.#dir}: recording stops at offset ${offset}: ${error.codeName}: ${error.message}`,
    );
  }
}
