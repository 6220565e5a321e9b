// A stand-in for the rtc.io client with the same public surface the demo
// page uses (default io(), RTCIOStream, on/emit, server.on/emit,
// untrackStream, connected, id). It records every call in window.stubCalls
// and lets the test fire events with window.stubFire(name, ...args) and
// window.stubFireServer(name, ...args). It does no networking.
const calls = [];
const handlers = new Map();
const serverHandlers = new Map();
window.stubCalls = calls;

const add = (m, ev, fn) => { if (!m.has(ev)) m.set(ev, []); m.get(ev).push(fn); };
const fire = (m, ev, args) => { for (const fn of m.get(ev) ?? []) fn(...args); };

export class RTCIOStream {
  constructor(mediaStream) {
    this.id = crypto.randomUUID();
    this.mediaStream = mediaStream;
  }
  toJSON() { return `[RTCIOStream] ${this.id}`; }
}

export default function io(url, opts) {
  const socket = {
    id: undefined,
    connected: false,
    on(ev, fn) { add(handlers, ev, fn); return socket; },
    emit(ev, ...args) { calls.push({ via: "emit", ev, args: JSON.parse(JSON.stringify(args)) }); return socket; },
    untrackStream(s) { calls.push({ via: "untrackStream", id: s.id }); },
    disconnect() { socket.connected = false; },
    server: {
      on(ev, fn) { add(serverHandlers, ev, fn); },
      emit(ev, ...args) { calls.push({ via: "server", ev, args: JSON.parse(JSON.stringify(args)) }); },
    },
  };
  calls.push({ via: "io", url, path: opts?.path ?? null });
  window.stubFire = (ev, ...args) => fire(handlers, ev, args);
  window.stubFireServer = (ev, ...args) => fire(serverHandlers, ev, args);
  window.RTCIOStreamStub = RTCIOStream;
  setTimeout(() => {
    socket.id = "sock-me";
    socket.connected = true;
    fire(handlers, "connect", []);
  }, 0);
  return socket;
}
