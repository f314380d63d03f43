// Waits for the next macrotask: lets every queued microtask (a pipe's next
// write, say) run first.
export function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
