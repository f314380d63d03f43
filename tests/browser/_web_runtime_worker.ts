// A worker that runs the codec as a web page does: the global `process`
// (and with it node:zlib, node:crypto, node:timers) is removed before the
// codec loads. The test posts encoded bytes; the worker answers with what
// the web-runtime codec made of them.

delete (globalThis as { process?: unknown }).process;

// Loaded after the removal above (static imports would run before it). The
// handler is set at once: a message that arrived while a top-level await
// was pending would find no handler.
const modules = Promise.all([
  import("../../codec/mod.ts"),
  import("../../transport/handshake.ts"),
  import("../../rpc/coalesce_stream.ts"),
]);

/** The worker's global scope, typed without the worker lib. */
const scope = self as unknown as {
  onmessage: (event: MessageEvent<WebRuntimeRequest>) => void;
  postMessage(message: unknown): void;
};

/** A request from the test. */
export type WebRuntimeRequest =
  | { kind: "facts" }
  | { kind: "decode"; chunks: Uint8Array[]; maxFrame?: number };

scope.onmessage = async (event: MessageEvent<WebRuntimeRequest>) => {
  const request = event.data;
  const [codec, { tokensEqual }, { CoalesceStream }] = await modules;
  if (request.kind === "facts") {
    const frame = { type: codec.FrameType.DATA, flags: 0, seq: 1, body: new Uint8Array(4096) };
    const batches = await Array.fromAsync(
      ReadableStream.from([1, 2, 3]).pipeThrough(new CoalesceStream<number>()),
    );
    scope.postMessage({
      crc: codec.crc32(new TextEncoder().encode("123456789")),
      sync: [codec.Compression.ZLIB, codec.Compression.LZ4, codec.Compression.ZSTD].map(
        codec.hasSyncCompression,
      ),
      zlibFlags: codec.compressFrame(frame, { algorithm: "zlib" }).flags,
      lz4Flags: codec.compressFrame(frame, { algorithm: "lz4" }).flags,
      zstdError: codeNameOf(() => codec.compress(codec.Compression.ZSTD, frame.body)),
      tokens: [tokensEqual("s3cret", "s3cret"), tokensEqual("s3cret", "s3creT")],
      coalesced: batches.flat(),
    });
    return;
  }
  const seen: unknown[] = [];
  try {
    const stream = ReadableStream.from(request.chunks).pipeThrough(
      codec.createDecodeChain({ maxFrame: request.maxFrame }),
    );
    for await (const batch of stream) {
      for (const message of batch) {
        seen.push({
          type: message.type,
          seq: message.seq,
          length: "data" in message ? message.data.length : 0,
        });
      }
    }
    scope.postMessage({ seen });
  } catch (error) {
    scope.postMessage({ seen, error: (error as { codeName?: string }).codeName });
  }
};

function codeNameOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return (error as { codeName?: string }).codeName;
  }
}
