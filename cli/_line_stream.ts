// Splits text into lines; what @std/streams' TextLineStream does, kept
// private so switching to it is one import change.

export class LineStream extends TransformStream<string, string> {
  constructor() {
    let rest = "";
    super({
      transform(chunk, controller) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop()!;
        for (const line of parts) {
          controller.enqueue(line.endsWith("\r") ? line.slice(0, -1) : line);
        }
      },
      flush(controller) {
        if (rest.length > 0) controller.enqueue(rest);
      },
    });
  }
}
