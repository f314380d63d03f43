// RpcDispatcherStream: the RPC dispatcher as a stream of decoded messages,
// the core of a server built from pipes (examples/pipes_server.ts).

import assert from "node:assert/strict";
import {
  catchStage,
  createDecodeChain,
  createDecodeStage,
  createEncodeChain,
  encodeFrames,
  encodeMessages,
  FrameType,
  type Message,
  StageStream,
  Status,
  StreamwireError,
} from "../../codec/mod.ts";
import { CoalesceStream, Methods, RpcDispatcherStream } from "../../rpc/mod.ts";
import { helloPayload, ServerHandshakeStream } from "../../transport/mod.ts";

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

function json(value: unknown): Uint8Array {
  return utf8.encode(JSON.stringify(value));
}

/** The HELLO_ACK a handshake stage passes on: JSON, the given window. */
function ack(window: number): Message {
  return {
    type: FrameType.HELLO_ACK,
    seq: 0,
    ack: {
      version: 1,
      session: "s1",
      codec: "json",
      compression: [],
      heartbeatMs: 30_000,
      maxFrame: 1 << 20,
      window,
    },
  };
}

function request(seq: number, method: string, params?: unknown): Message {
  return {
    type: FrameType.REQUEST,
    seq,
    method,
    params: params === undefined ? new Uint8Array(0) : json(params),
  };
}

/** A message's value (RESPONSE, DATA) or status (ERROR), for comparisons. */
function show(m: Message): unknown {
  switch (m.type) {
    case FrameType.RESPONSE:
    case FrameType.DATA:
      return [m.type, m.seq, JSON.parse(fromUtf8.decode(m.data))];
    case FrameType.ERROR:
      return [m.type, m.seq, m.code];
    default:
      return [m.type, m.seq];
  }
}

const methods = new Methods()
  .unary("echo", (p) => p)
  .unary("add", ([a, b]: number[]) => a + b)
  .serverStream("count", function* (n: number) {
    for (let i = 1; i <= n; i++) yield i;
  });

Deno.test("RpcDispatcherStream passes the HELLO_ACK on and answers unary calls", async () => {
  const out = await Array.fromAsync(
    ReadableStream.from([
      ack(4),
      request(1, "echo", { hello: "world" }),
      request(3, "add", [2, 40]),
      request(5, "no.such"),
    ]).pipeThrough(new RpcDispatcherStream({ methods })),
  );
  assert.deepEqual(out.map(show), [
    [FrameType.HELLO_ACK, 0],
    [FrameType.RESPONSE, 1, { hello: "world" }],
    [FrameType.RESPONSE, 3, 42],
    [FrameType.ERROR, 5, Status.UNIMPLEMENTED],
  ]);
});

Deno.test("RpcDispatcherStream answers a batch in request order, one failing entry apart", async () => {
  const out = await Array.fromAsync(
    ReadableStream.from<Message>([
      ack(4),
      {
        type: FrameType.BATCH,
        seq: 7,
        entries: [
          { method: "echo", params: json(1) },
          { method: "no.such", params: new Uint8Array(0) },
          { method: "add", params: json([1, 2]) },
        ],
      },
    ]).pipeThrough(new RpcDispatcherStream({ methods })),
  );
  assert.equal(out.length, 2);
  const result = out[1];
  assert.ok(result.type === FrameType.BATCH_RESULT && result.seq === 7);
  assert.deepEqual(result.results.map((r) => r.code), [0, Status.UNIMPLEMENTED, 0]);
  assert.equal(fromUtf8.decode(result.results[0].data), "1");
  assert.equal(fromUtf8.decode(result.results[2].data), "3");
});

Deno.test("RpcDispatcherStream sends a stream's DATA only against credit", async () => {
  // A stream of 10 with a window of 4: DATA 5 waits for CREDIT. The PING,
  // sent once the handler produced its fifth value, is answered before
  // DATA 5 only if the stream stopped at the window.
  const fifth = Promise.withResolvers<void>();
  const pong = Promise.withResolvers<void>();
  const end = Promise.withResolvers<void>();
  const streaming = new Methods().serverStream("numbers", function* (n: number) {
    for (let i = 1; i <= n; i++) {
      if (i === 5) fifth.resolve();
      yield i;
    }
  });
  async function* input(): AsyncGenerator<Message> {
    yield ack(4);
    yield { type: FrameType.OPEN, seq: 9, method: "numbers", params: json(10) };
    await fifth.promise;
    yield { type: FrameType.PING, seq: 11, payload: Uint8Array.of(1) };
    await pong.promise;
    yield { type: FrameType.CREDIT, seq: 9, credit: 6 };
    await end.promise;
  }
  const seen: unknown[] = [];
  for await (
    const m of ReadableStream.from(input()).pipeThrough(
      new RpcDispatcherStream({ methods: streaming }),
    )
  ) {
    seen.push(show(m));
    if (m.type === FrameType.PONG) pong.resolve();
    if (m.type === FrameType.END) end.resolve();
  }
  const data = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => [FrameType.DATA, 9, from + i]);
  assert.deepEqual(seen, [
    [FrameType.HELLO_ACK, 0],
    ...data(1, 4),
    [FrameType.PONG, 11],
    ...data(5, 10),
    [FrameType.END, 9],
  ]);
});

Deno.test("RpcDispatcherStream turns an error chunk into a connection ERROR, aborts calls and ends", async () => {
  const aborted = Promise.withResolvers<unknown>();
  const waiting = new Methods()
    .unary("echo", (p) => p)
    .unary("wait", (_p, ctx) =>
      new Promise((_resolve, reject) => {
        ctx.signal.addEventListener("abort", () => {
          aborted.resolve(ctx.signal.reason);
          reject(ctx.signal.reason);
        });
      }));
  const cancelled = Promise.withResolvers<unknown>();
  const chunks: (Message | StreamwireError)[] = [
    ack(4),
    request(1, "wait"),
    request(3, "echo", "before"),
    new StreamwireError(Status.DATA_LOSS, "Checksum mismatch on frame seq '5'"),
    request(7, "echo", "after"),
  ];
  const input = new ReadableStream<Message | StreamwireError>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
    },
    cancel: (reason) => cancelled.resolve(reason),
  });
  const out = await Array.fromAsync(
    input.pipeThrough(new RpcDispatcherStream({ methods: waiting })),
  );
  assert.deepEqual(out.map(show), [
    [FrameType.HELLO_ACK, 0],
    [FrameType.RESPONSE, 3, "before"],
    [FrameType.ERROR, 0, Status.DATA_LOSS],
  ]);
  const error = out[2];
  assert.ok(error.type === FrameType.ERROR);
  assert.equal(error.message, "Checksum mismatch on frame seq '5'");
  const reason = await aborted.promise;
  assert.ok(reason instanceof StreamwireError && reason.code === Status.DATA_LOSS);
  // Terminated: what fed it was cancelled, not read to its end.
  await cancelled.promise;
});

Deno.test("RpcDispatcherStream answers a refused handshake with its ERROR", async () => {
  const out = await Array.fromAsync(
    ReadableStream.from<Message>([
      { type: FrameType.HELLO, seq: 0, hello: helloPayload({ token: "wrong" }) },
      request(1, "echo", 1),
    ])
      .pipeThrough(new ServerHandshakeStream({ token: "s3cret" }))
      .pipeThrough(new RpcDispatcherStream({ methods })),
  );
  assert.deepEqual(out.map(show), [[FrameType.ERROR, 0, Status.UNAUTHENTICATED]]);
});

Deno.test("RpcDispatcherStream refuses calls before the HELLO_ACK, with id 0 or of the wrong parity", async () => {
  const early = await Array.fromAsync(
    ReadableStream.from([request(1, "echo", 1)]).pipeThrough(new RpcDispatcherStream({ methods })),
  );
  assert.deepEqual(early.map(show), [[FrameType.ERROR, 0, Status.FAILED_PRECONDITION]]);

  const out = await Array.fromAsync(
    ReadableStream.from([ack(4), request(2, "echo", 1), request(3, "echo", 3), request(0, "echo")])
      .pipeThrough(new RpcDispatcherStream({ methods })),
  );
  assert.deepEqual(out.map(show), [
    [FrameType.HELLO_ACK, 0],
    [FrameType.ERROR, 2, Status.INVALID_ARGUMENT],
    [FrameType.RESPONSE, 3, 3],
    [FrameType.ERROR, 0, Status.INVALID_ARGUMENT],
  ]);
});

Deno.test("RpcDispatcherStream keeps its answers waiting for the reader within maxQueueFrames", async () => {
  // Credit is no limit here (window 1000): only the queue bound stops the
  // stream. The PING goes in once the stream started; its PONG is queued
  // behind the DATA already waiting, so it shows where the stream stopped.
  const pinged = Promise.withResolvers<void>();
  const end = Promise.withResolvers<void>();
  async function* input(): AsyncGenerator<Message> {
    yield ack(1000);
    yield { type: FrameType.OPEN, seq: 1, method: "count", params: json(100) };
    yield { type: FrameType.PING, seq: 3, payload: new Uint8Array(0) };
    // Resumed for the next chunk: the PING was handled.
    pinged.resolve();
    await end.promise;
  }
  const readable = ReadableStream.from(input()).pipeThrough(
    new RpcDispatcherStream({ methods, maxQueueFrames: 8 }),
  );
  await pinged.promise;
  const seen: unknown[] = [];
  for await (const m of readable) {
    seen.push(show(m));
    if (m.type === FrameType.END) end.resolve();
  }
  const pong = seen.findIndex((m) => (m as number[])[0] === FrameType.PONG);
  // HELLO_ACK and 7 DATA fill the 8 frames; nothing more was produced.
  assert.deepEqual(seen.slice(0, pong + 1), [
    [FrameType.HELLO_ACK, 0],
    ...Array.from({ length: 7 }, (_, i) => [FrameType.DATA, 1, i + 1]),
    [FrameType.PONG, 3],
  ]);
  assert.equal(seen.length, 1 + 100 + 1 + 1);
  assert.deepEqual(seen.at(-1), [FrameType.END, 1]);
});

Deno.test("RpcDispatcherStream aborts the calls still running when its input ends", async () => {
  const aborted = Promise.withResolvers<unknown>();
  const waiting = new Methods().unary("wait", (_p, ctx) =>
    new Promise((_resolve, reject) => {
      ctx.signal.addEventListener("abort", () => {
        aborted.resolve(ctx.signal.reason);
        reject(ctx.signal.reason);
      });
    }));
  const out = await Array.fromAsync(
    ReadableStream.from([ack(4), request(1, "wait")]).pipeThrough(
      new RpcDispatcherStream({ methods: waiting }),
    ),
  );
  assert.deepEqual(out.map(show), [[FrameType.HELLO_ACK, 0]]);
  const reason = await aborted.promise;
  assert.ok(reason instanceof StreamwireError && reason.code === Status.UNAVAILABLE);
});

Deno.test("a pipes-built server answers the frames of one read with one chunk of bytes", async () => {
  // The pipeline of examples/pipes_server.ts, over memory.
  const calls = Array.from({ length: 20 }, (_, i) => request(2 * i + 1, "add", [i, 1]));
  const bytes = encodeFrames(encodeMessages([
    { type: FrameType.HELLO, seq: 0, hello: helloPayload({ codecs: ["json"] }) },
    ...calls,
  ]));
  const chunks = await Array.fromAsync(
    ReadableStream.from([bytes])
      .pipeThrough(new StageStream(catchStage(createDecodeStage())))
      .pipeThrough(new ServerHandshakeStream())
      .pipeThrough(new RpcDispatcherStream({ methods }))
      .pipeThrough(new CoalesceStream())
      .pipeThrough(createEncodeChain()),
  );
  assert.equal(chunks.length, 1);
  const [answers] = await Array.fromAsync(
    ReadableStream.from(chunks).pipeThrough(createDecodeChain()),
  );
  assert.equal(answers[0].type, FrameType.HELLO_ACK);
  assert.deepEqual(
    answers.slice(1).map(show),
    calls.map((_, i) => [FrameType.RESPONSE, 2 * i + 1, i + 1]),
  );
});

Deno.test("RpcDispatcherStream aborts its calls and cancels its input when its reader cancels", async () => {
  const started = Promise.withResolvers<void>();
  const aborted = Promise.withResolvers<unknown>();
  const inputCancelled = Promise.withResolvers<unknown>();
  const waiting = new Methods().unary("wait", (_p, ctx) => {
    started.resolve();
    return new Promise((_resolve, reject) => {
      ctx.signal.addEventListener("abort", () => {
        aborted.resolve(ctx.signal.reason);
        reject(ctx.signal.reason);
      });
    });
  });
  const input = new ReadableStream<Message>({
    start(controller) {
      controller.enqueue(ack(4));
      controller.enqueue(request(1, "wait"));
    },
    cancel: (reason) => inputCancelled.resolve(reason),
  });
  const reader = input.pipeThrough(new RpcDispatcherStream({ methods: waiting })).getReader();
  assert.equal((await reader.read()).value?.type, FrameType.HELLO_ACK);
  await started.promise;
  await reader.cancel(new Error("The socket is gone"));
  const reason = await aborted.promise;
  assert.ok(reason instanceof StreamwireError && reason.code === Status.UNAVAILABLE);
  assert.match(String((await inputCancelled.promise as Error).message), /The socket is gone/);
});

Deno.test("RpcDispatcherStream fails as a slow consumer when control frames pile up unread", async () => {
  const cancelled = Promise.withResolvers<unknown>();
  const pings: Message[] = Array.from({ length: 10 }, (_, i) => ({
    type: FrameType.PING,
    seq: i + 1,
    payload: new Uint8Array(0),
  }));
  const input = new ReadableStream<Message>({
    start(controller) {
      for (const m of [ack(4), ...pings]) controller.enqueue(m);
    },
    cancel: (reason) => cancelled.resolve(reason),
  });
  const readable = input.pipeThrough(new RpcDispatcherStream({ methods, maxQueueFrames: 2 }));
  // Nothing is read: HELLO_ACK and three PONGs fill twice the bound.
  const reason = await cancelled.promise;
  assert.ok(reason instanceof StreamwireError && reason.code === Status.RESOURCE_EXHAUSTED);
  assert.match(reason.message, /Slow consumer: '4' frames queued/);
  await assert.rejects(Array.fromAsync(readable), { codeName: "resource_exhausted" });
});
