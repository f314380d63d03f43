// The admin API's live wire tap: one session's frames as they pass, in
// both directions, with the method of each call and a preview of its
// payload decoded with the session's codec, streamed as Server-Sent
// Events. Off unless opened: a session without a tap pays one branch per
// message (Session.tap). Private to rpc/admin.ts.

import { FrameType, HEADER_SIZE, Status } from "../codec/constants.ts";
import { decompressFrame } from "../codec/compression_stream.ts";
import { Deframer } from "../codec/deframer_stream.ts";
import { statusName, StreamwireError } from "../codec/error.ts";
import type { Frame } from "../codec/frame.ts";
import { decodeMessage, encodedBodySize, type Message } from "../codec/message.ts";
import { getCodec, type PayloadCodec } from "../codec/payload_codec.ts";
import type { Session } from "../transport/session.ts";
import type { SessionTap } from "../transport/session_tap.ts";
import { SseStream } from "./_sse.ts";

/** One frame seen by a wire tap, as handed to the `redact` hook of `adminApp`. */
export interface TapFrame {
  /** The tapped session's id. */
  session: string;
  /** `in`: the server received it; `out`: the server sent it. */
  direction: "in" | "out";
  /** Frame type name (`REQUEST`, `RESPONSE`, `PING`, …). */
  type: string;
  /** Call id, 0 for connection-level frames. */
  seq: number;
  /** Header plus body in bytes, before compression. */
  size: number;
  /**
   * The call's method: named by REQUEST, NOTIFY, BROADCAST and OPEN, and
   * remembered by the tap for the frames that answer or continue a call it saw opened.
   */
  method: string | undefined;
  /** The decoded payload (params, result, error, …), or undefined when it has none or was not decoded. */
  value: unknown;
  /** The preview the tap shows unless `redact` returns another: `value` as JSON, shortened. */
  preview: string;
}

/** Options of {@linkcode WireTaps}. */
export interface WireTapOptions {
  /** Taps open at once over all sessions. */
  maxTaps: number;
  /** Frames held per tap for a reader that is behind. */
  buffer: number;
  /** Characters of each preview. */
  previewChars: number;
  /** Replaces the preview of each frame. */
  redact: ((frame: TapFrame) => string) | undefined;
}

/**
 * Payloads larger than this are not decoded for a preview (their size is
 * shown instead): a tap must not decode megabytes on the session's path.
 */
const DECODE_LIMIT = 64 * 1024;
/**
 * Call ids whose method a tap remembers, to name the frames that answer
 * them; the oldest is forgotten first.
 */
const CALL_NAMES = 1024;

const TYPE_NAMES = new Map<number, string>(
  Object.entries(FrameType).map(([name, code]) => [code, name]),
);

/** A row as the client gets it. */
type Row = Omit<TapFrame, "value" | "session"> & { t: number };
type Item = { kind: "open"; session: string; codec: string } | { kind: "frame"; row: Row } | {
  kind: "end";
  reason: string;
};

/** The taps of one admin app. */
export class WireTaps {
  #options: WireTapOptions;
  #open = new Set<Tap>();

  constructor(options: WireTapOptions) {
    this.#options = options;
  }

  /**
   * Opens a tap on `session`: an `open` event, then a `frame` event per
   * frame until the client goes away or the session ends (an `end` event).
   *
   * @returns The streaming response.
   * @throws {StreamwireError} `permission_denied` when taps are off
   *   (`maxTaps` 0), `resource_exhausted` when `maxTaps` are open,
   *   `failed_precondition` when the session is closed or tapped by
   *   something else than an admin app.
   */
  open(session: Session): Response {
    const max = this.#options.maxTaps;
    if (max <= 0) {
      throw new StreamwireError(Status.PERMISSION_DENIED, "Wire taps are turned off (maxTaps 0)");
    }
    if (this.#open.size >= max) {
      throw new StreamwireError(
        Status.RESOURCE_EXHAUSTED,
        `Wire taps already open: '${this.#open.size}' (maxTaps)`,
      );
    }
    if (session.state === "closed") {
      throw new StreamwireError(Status.FAILED_PRECONDITION, `Session '${session.id}' is closed`);
    }
    const fanout = fanoutOf(session);
    const tap = new Tap(session, this.#options, () => {
      this.#open.delete(tap);
      fanout.remove(tap);
    });
    fanout.add(tap);
    this.#open.add(tap);
    return tap.stream.response();
  }

  /** Ends every tap (the server is shutting down). */
  close(): void {
    for (const tap of [...this.#open]) tap.end("Admin API closing");
  }
}

function closeReason(session: Session): string {
  const reason = session.closeReason;
  return reason === undefined
    ? "Session closed"
    : `Session closed: ${reason.codeName}: ${reason.message}`;
}

/**
 * The one `Session.tap` of a session, shared by every admin tap on it, so
 * that two dashboards can tap the same session. Set while it has a tap,
 * cleared with the last.
 */
class Fanout implements SessionTap {
  readonly taps = new Set<Tap>();
  #session: Session;

  constructor(session: Session) {
    this.#session = session;
    // One reaction per session tapped, however many taps come and go.
    session.closed.then(() => {
      const reason = closeReason(session);
      for (const tap of [...this.taps]) tap.end(reason);
    });
  }

  add(tap: Tap): void {
    const current = this.#session.tap;
    if (current !== undefined && current !== this) {
      throw new StreamwireError(
        Status.FAILED_PRECONDITION,
        `Session '${this.#session.id}' already has a tap of another owner`,
      );
    }
    this.taps.add(tap);
    this.#session.tap = this;
  }

  remove(tap: Tap): void {
    this.taps.delete(tap);
    if (this.taps.size === 0 && this.#session.tap === this) this.#session.tap = undefined;
  }

  received(message: Message): void {
    for (const tap of this.taps) tap.message("in", message, undefined);
  }

  sent(message: Message, size: number): void {
    for (const tap of this.taps) tap.message("out", message, size);
  }

  sentEncoded(bytes: Uint8Array): void {
    for (const tap of this.taps) tap.encoded(bytes);
  }
}

const fanouts = new WeakMap<Session, Fanout>();

function fanoutOf(session: Session): Fanout {
  let fanout = fanouts.get(session);
  if (fanout === undefined) fanouts.set(session, fanout = new Fanout(session));
  return fanout;
}

/** One open tap: its calls' names and its event stream. */
class Tap {
  readonly stream: SseStream<Item>;
  #session: Session;
  #options: WireTapOptions;
  #codec: PayloadCodec;
  #calls = new Map<number, string>();

  constructor(session: Session, options: WireTapOptions, onEnd: () => void) {
    this.#session = session;
    this.#options = options;
    this.#codec = getCodec(session.codec);
    this.stream = new SseStream<Item>({
      limit: options.buffer,
      encode: (item, dropped) => {
        switch (item.kind) {
          case "open":
            return { event: "open", data: { session: item.session, codec: item.codec } };
          case "frame":
            return { event: "frame", data: { ...item.row, dropped } };
          case "end":
            return { event: "end", data: { reason: item.reason, dropped } };
        }
      },
      onEnd,
    });
    this.stream.push({ kind: "open", session: session.id, codec: session.codec });
  }

  end(reason: string): void {
    this.stream.end({ kind: "end", reason });
  }

  /** A message passing; never throws into the session's path. */
  message(direction: "in" | "out", message: Message, size: number | undefined): void {
    if (!this.stream.open) return;
    try {
      this.#row(direction, message, size ?? HEADER_SIZE + encodedBodySize(message));
    } catch (error) {
      this.#row(direction, message, 0, error);
    }
  }

  /** Frames encoded elsewhere (a broadcast): read back from their bytes. */
  encoded(bytes: Uint8Array): void {
    if (!this.stream.open) return;
    try {
      // Whole frames, as the session queued them; none can be over 4 GiB.
      new Deframer({ maxFrame: 0xffffffff }).push(bytes, { push: (frame) => this.#frame(frame) });
    } catch (error) {
      // Not the protocol's framing: nothing after it can be read.
      this.#push(this.#unread(FrameType.BROADCAST, 0, bytes.length, error));
    }
  }

  #frame(frame: Frame): void {
    try {
      const plain = decompressFrame(frame);
      this.message("out", decodeMessage(plain), HEADER_SIZE + plain.body.length);
    } catch (error) {
      this.#push(this.#unread(frame.type, frame.seq, HEADER_SIZE + frame.body.length, error));
    }
  }

  /** The row of an outbound frame that could not be decoded. */
  #unread(type: number, seq: number, size: number, error: unknown): Row {
    return {
      t: Date.now(),
      direction: "out",
      type: TYPE_NAMES.get(type) ?? `0x${type.toString(16)}`,
      seq,
      size,
      method: undefined,
      preview: `(not decoded: ${(error as Error).message})`.slice(0, this.#options.previewChars),
    };
  }

  #row(direction: "in" | "out", message: Message, size: number, failed?: unknown): void {
    const method = this.#method(message);
    let value: unknown;
    let preview: string;
    if (failed === undefined) {
      try {
        value = this.#value(message);
        preview = previewOf(value, this.#options.previewChars);
      } catch (error) {
        value = undefined;
        preview = `(not decoded: ${(error as Error).message})`;
      }
    } else preview = `(not decoded: ${(failed as Error).message})`;
    const frame: TapFrame = {
      session: this.#session.id,
      direction,
      type: TYPE_NAMES.get(message.type) ?? `0x${(message.type as number).toString(16)}`,
      seq: message.seq,
      size,
      method,
      value,
      preview,
    };
    const redact = this.#options.redact;
    if (redact !== undefined) {
      try {
        preview = String(redact(frame));
      } catch {
        // A failing hook must not leak what it was meant to hide.
        preview = "(redact failed)";
      }
    }
    this.#push({
      t: Date.now(),
      direction,
      type: frame.type,
      seq: frame.seq,
      size,
      method,
      preview: preview.length > this.#options.previewChars
        ? `${preview.slice(0, this.#options.previewChars - 1)}…`
        : preview,
    });
  }

  #push(row: Row): void {
    this.stream.push({ kind: "frame", row });
  }

  /** The method a frame names, or the one of the call it belongs to. */
  #method(message: Message): string | undefined {
    const calls = this.#calls;
    switch (message.type) {
      case FrameType.REQUEST:
      case FrameType.OPEN:
        this.#remember(message.seq, message.method);
        return message.method;
      case FrameType.NOTIFY:
      case FrameType.BROADCAST:
        return message.method;
      case FrameType.BATCH: {
        const names = message.entries.map((e) => e.method);
        const name = `batch(${names.slice(0, 3).join(", ")}${names.length > 3 ? ", …" : ""})`;
        this.#remember(message.seq, name);
        return name;
      }
      case FrameType.RESPONSE:
      case FrameType.BATCH_RESULT:
      case FrameType.CANCEL: {
        const name = calls.get(message.seq);
        calls.delete(message.seq);
        return name;
      }
      case FrameType.ERROR: {
        if (message.seq === 0) return undefined;
        const name = calls.get(message.seq);
        calls.delete(message.seq);
        return name;
      }
      case FrameType.DATA:
      case FrameType.END:
      case FrameType.CREDIT:
        return calls.get(message.seq);
    }
    return undefined;
  }

  #remember(seq: number, name: string): void {
    const calls = this.#calls;
    calls.delete(seq);
    calls.set(seq, name);
    if (calls.size > CALL_NAMES) calls.delete(calls.keys().next().value!);
  }

  /** The frame's payload as a value. */
  #value(message: Message): unknown {
    const decode = (bytes: Uint8Array): unknown =>
      bytes.length > DECODE_LIMIT ? `(${bytes.length} bytes)` : this.#codec.decode(bytes);
    switch (message.type) {
      case FrameType.REQUEST:
      case FrameType.NOTIFY:
      case FrameType.BROADCAST:
      case FrameType.OPEN:
        return decode(message.params);
      case FrameType.RESPONSE:
      case FrameType.DATA:
        return decode(message.data);
      case FrameType.BATCH:
        return message.entries.map((e) => ({ method: e.method, params: decode(e.params) }));
      case FrameType.BATCH_RESULT:
        return message.results.map((r) =>
          r.code === 0
            ? decode(r.data)
            : { code: statusName(r.code), message: new TextDecoder().decode(r.data) }
        );
      case FrameType.ERROR:
      case FrameType.CANCEL:
        return { code: statusName(message.code), message: message.message };
      case FrameType.GOAWAY:
        return { code: statusName(message.code), lastId: message.lastId, reason: message.reason };
      case FrameType.HELLO: {
        // The client's token is never shown.
        const { token: _token, ...hello } = message.hello;
        return hello;
      }
      case FrameType.HELLO_ACK:
        return message.ack;
      case FrameType.PING:
      case FrameType.PONG:
        return { bytes: message.payload.length };
      case FrameType.CREDIT:
        return { credit: message.credit };
    }
    return undefined;
  }
}

/** A value as short JSON: bytes by their length, bigints as text, maps as objects. */
function previewOf(value: unknown, max: number): string {
  if (value === undefined) return "";
  let text: string;
  try {
    text = JSON.stringify(value, (_key, v) => {
      if (typeof v === "bigint") return `${v}n`;
      if (v instanceof Uint8Array) return `(${v.length} bytes)`;
      if (v instanceof Map) return Object.fromEntries(v);
      if (v instanceof Set) return [...v];
      return v;
    }) ?? String(value);
  } catch (error) {
    text = `(not shown: ${(error as Error).message})`;
  }
  return text.length > max ? `${text.slice(0, Math.max(0, max - 1))}…` : text;
}
