// Heap cost of the stream shapes a session could read through, per connection:
// `deno run -A tests/transport/stream_heap.ts`. Figures in docs/PERFORMANCE.md.
import * as v8 from "node:v8";
import * as vm from "node:vm";
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;
const N = 5000;
const keep: unknown[] = [];
function measure(label: string, make: () => unknown) {
  gc();
  gc();
  const before = Deno.memoryUsage().heapUsed;
  for (let i = 0; i < N; i++) keep.push(make());
  gc();
  gc();
  const after = Deno.memoryUsage().heapUsed;
  console.log(label, ((after - before) / N / 1024).toFixed(2), "KiB heap each");
  keep.length = 0;
}
const never = () => new Promise<void>(() => {});
measure("readable with pending pull", () => {
  const r = new ReadableStream<Uint8Array>({ pull: never }, { highWaterMark: 0 });
  const reader = r.getReader();
  reader.read();
  return reader;
});
measure("readable -> 1 transform -> pipeTo writable", () => {
  const r = new ReadableStream<Uint8Array>({ pull: never }, { highWaterMark: 0 });
  const t = new TransformStream<Uint8Array, number[]>({
    transform(c, ctl) {
      ctl.enqueue([c.length]);
    },
  });
  const w = new WritableStream<number[]>({ write() {} });
  const p = r.pipeThrough(t).pipeTo(w);
  p.catch(() => {});
  return [r, t, w, p];
});
measure("readable -> pipeTo writable (no transform)", () => {
  const r = new ReadableStream<Uint8Array>({ pull: never }, { highWaterMark: 0 });
  const w = new WritableStream<Uint8Array>({ write() {} });
  const p = r.pipeTo(w);
  p.catch(() => {});
  return [r, w, p];
});
measure("readable -> 4 transforms -> pipeTo", () => {
  let r: ReadableStream<unknown> = new ReadableStream<Uint8Array>({ pull: never }, {
    highWaterMark: 0,
  });
  for (let i = 0; i < 4; i++) {
    r = r.pipeThrough(
      new TransformStream({
        transform(c, ctl) {
          ctl.enqueue(c);
        },
      }),
    );
  }
  const w = new WritableStream({ write() {} });
  const p = r.pipeTo(w);
  p.catch(() => {});
  return p;
});
measure("async read loop with pending promise", () => {
  const loop = async () => {
    for (;;) await never();
  };
  const p = loop();
  return p;
});
