// catchStage: the failure of a stage as the last chunk of its output, the
// first stage of a server built from pipes (examples/pipes_server.ts).

import assert from "node:assert/strict";
import {
  catchStage,
  createDecodeStage,
  encodeFrames,
  encodeMessages,
  FrameType,
  type Message,
  type Stage,
  StageStream,
  Status,
  StreamwireError,
} from "../../codec/mod.ts";

const FRAMES = encodeFrames(encodeMessages([
  { type: FrameType.CREDIT, seq: 1, credit: 8 },
  { type: FrameType.END, seq: 3 },
]));

/** FRAMES, then a copy of them whose last body byte was flipped after checksumming. */
const CORRUPT = (() => {
  const bad = encodeFrames(encodeMessages([{ type: FrameType.CREDIT, seq: 5, credit: 1 }]));
  bad[bad.length - 1] ^= 1;
  return new Uint8Array([...FRAMES, ...bad]);
})();

/** A readable that delivers `chunks`, stays open and tells when it is cancelled. */
function openEnded<T>(chunks: T[]): { readable: ReadableStream<T>; cancelled: Promise<unknown> } {
  const cancelled = Promise.withResolvers<unknown>();
  const readable = new ReadableStream<T>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
    },
    cancel: (reason) => cancelled.resolve(reason),
  });
  return { readable, cancelled: cancelled.promise };
}

Deno.test("catchStage ends the output with the error, after the messages decoded before it", async () => {
  const out = await Array.fromAsync(
    ReadableStream.from([CORRUPT]).pipeThrough(new StageStream(catchStage(createDecodeStage()))),
  );
  assert.equal(out.length, 3);
  assert.deepEqual(out.slice(0, 2).map((m) => (m as Message).seq), [1, 3]);
  const error = out[2];
  assert.ok(error instanceof StreamwireError);
  assert.equal(error.code, Status.DATA_LOSS);
  assert.match(error.message, /Checksum mismatch on frame seq '5'/);
});

Deno.test("catchStage terminates: the input is cancelled and nothing after the failure is read", async () => {
  const { readable, cancelled } = openEnded([FRAMES, new Uint8Array(20), FRAMES]);
  const out = await Array.fromAsync(
    readable.pipeThrough(new StageStream(catchStage(createDecodeStage()))),
  );
  assert.deepEqual(out.slice(0, 2).map((m) => (m as Message).seq), [1, 3]);
  assert.equal(out.length, 3);
  assert.ok(out[2] instanceof StreamwireError);
  assert.equal(out[2].codeName, "invalid_argument");
  // The open-ended input was cancelled rather than left waiting.
  await cancelled;
});

Deno.test("catchStage turns a failing flush into the last chunk", async () => {
  const truncated = FRAMES.subarray(0, FRAMES.length - 3);
  const out = await Array.fromAsync(
    ReadableStream.from([truncated]).pipeThrough(new StageStream(catchStage(createDecodeStage()))),
  );
  assert.deepEqual(out.slice(0, 1).map((m) => (m as Message).seq), [1]);
  assert.ok(out[1] instanceof StreamwireError);
  assert.match(out[1].message, /Stream ended inside a frame/);
});

Deno.test("catchStage catches rejections and controller.error, wrapping foreign errors as unknown", async () => {
  const boom = new TypeError("boom");
  const rejecting: Stage<number, number> = {
    async transform(n, controller) {
      controller.enqueue(n);
      await Promise.resolve();
      if (n === 2) throw boom;
    },
  };
  const out = await Array.fromAsync(
    ReadableStream.from([1, 2, 3]).pipeThrough(new StageStream(catchStage(rejecting))),
  );
  assert.deepEqual(out.slice(0, 2), [1, 2]);
  const error = out[2];
  assert.ok(error instanceof StreamwireError);
  assert.equal(error.code, Status.UNKNOWN);
  assert.equal(error.message, "boom");
  assert.equal(error.cause, boom);

  const erroring: Stage<number, number> = {
    transform(n, controller) {
      if (n === 2) controller.error(new StreamwireError(Status.OUT_OF_RANGE, "Too big '2'"));
      else controller.enqueue(n);
    },
  };
  const [one, failure, ...rest] = await Array.fromAsync(
    ReadableStream.from([1, 2, 3]).pipeThrough(new TransformStream(catchStage(erroring))),
  );
  assert.equal(one, 1);
  assert.ok(failure instanceof StreamwireError);
  assert.equal(failure.codeName, "out_of_range");
  assert.deepEqual(rest, []);
});

Deno.test("catchStage driven by a loop ignores input after the failure and terminates once", () => {
  const out: unknown[] = [];
  let terminated = 0;
  const controller = {
    desiredSize: 1,
    enqueue: (chunk: unknown) => void out.push(chunk),
    error(reason?: unknown) {
      throw reason;
    },
    terminate: () => void terminated++,
  } as TransformStreamDefaultController<Message | StreamwireError>;
  const stage = catchStage(createDecodeStage());
  stage.transform!(FRAMES, controller);
  stage.transform!(new Uint8Array(20), controller);
  stage.transform!(FRAMES, controller);
  stage.flush!(controller);
  assert.deepEqual(out.slice(0, 2).map((m) => (m as Message).seq), [1, 3]);
  assert.equal(out.length, 3);
  assert.ok(out[2] instanceof StreamwireError);
  assert.equal(terminated, 1);
});
