// Shared plumbing for the JSON-lines drivers: one command per stdin line, one
// report per stdout line. The Go side (internal/testenv) owns these processes;
// when its end of stdin closes (test finished or test binary died) the driver
// must shut down so that nothing outlives the test.

import { createInterface } from "node:readline";

// send writes one report line. process.stdout.write keeps call order, which
// the Go side relies on to see events in the order they were received.
export function send(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// toJSONSafe turns values socket.io or a page can hand us (Buffers, typed
// arrays, Errors, undefined, cycles) into something JSON.stringify keeps.
// Binary payloads become {"$binary": base64} so tests can still check them.
export function toJSONSafe(value, seen = new WeakSet()) {
  if (value === undefined) return null;
  if (value === null || typeof value !== "object") {
    if (typeof value === "bigint") return value.toString();
    if (typeof value === "function") return null;
    return value;
  }
  if (Buffer.isBuffer(value)) return { $binary: value.toString("base64") };
  if (value instanceof ArrayBuffer) {
    return { $binary: Buffer.from(value).toString("base64") };
  }
  if (ArrayBuffer.isView(value)) {
    return {
      $binary: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64"),
    };
  }
  if (value instanceof Error) return { message: value.message, name: value.name };
  if (seen.has(value)) return "[Circular]";
  seen.add(value);
  let out;
  if (Array.isArray(value)) {
    out = value.map((v) => toJSONSafe(v, seen));
  } else {
    out = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJSONSafe(v, seen);
  }
  seen.delete(value);
  return out;
}

// fromWire reverses the {"$binary": ...} encoding for arguments the Go side
// wants sent as real binary attachments.
export function fromWire(value) {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(fromWire);
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0] === "$binary" && typeof value.$binary === "string") {
    return Buffer.from(value.$binary, "base64");
  }
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = fromWire(v);
  return out;
}

// serve reads commands and dispatches them to handlers[cmd]. Every command
// that carries a "seq" gets exactly one reply {type:"reply", seq, ok|error}.
// Handlers run concurrently; replies may therefore come back out of order.
// onEnd runs once when stdin closes or an "exit" command arrives.
export function serve(handlers, onEnd) {
  let ending = false;
  const end = async (code) => {
    if (ending) return;
    ending = true;
    try {
      await onEnd();
    } catch (err) {
      process.stderr.write(`shutdown: ${err?.stack ?? err}\n`);
    }
    process.exit(code);
  };

  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on("line", async (line) => {
    if (line.trim() === "") return;
    let msg;
    try {
      msg = JSON.parse(line);
    } catch (err) {
      send({ type: "error", error: `bad command line: ${err.message}` });
      return;
    }
    const seq = msg.seq;
    const reply = (body) => {
      if (seq !== undefined) send({ type: "reply", seq, ...body });
    };
    if (msg.cmd === "exit") {
      reply({ ok: true });
      await end(0);
      return;
    }
    const handler = handlers[msg.cmd];
    if (!handler) {
      reply({ error: `unknown command ${JSON.stringify(msg.cmd)}` });
      return;
    }
    try {
      const result = await handler(msg);
      reply({ ok: true, ...(result ?? {}) });
    } catch (err) {
      reply({ error: err?.message ?? String(err) });
    }
  });
  rl.on("close", () => end(0));
  for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => end(0));
}
