// sio-driver: drives real JavaScript socket.io-client 4.8 instances for Go
// tests. Commands arrive as JSON lines on stdin, reports leave as JSON lines
// on stdout (see lib/jsonl.mjs for the reply convention).
//
// Commands (all may carry "seq" to get a reply):
//   {"cmd":"connect","client":"a","url":"http://127.0.0.1:PORT","opts":{...}}
//       reply {id, transport} once connected, or {error, data} on the first
//       connect_error. opts go to io(); reconnection defaults to false so a
//       test sees each connection loss once, unless it asks for more.
//   {"cmd":"emit","client":"a","event":"join-room","args":[...],"ack":ms?}
//       with "ack", waits for the server's acknowledgement (reply {ack:[...]}).
//   {"cmd":"disconnect","client":"a"}   clean socket.io DISCONNECT.
//   {"cmd":"drop","client":"a","reconnect":false}
//       abrupt loss: every TCP connection of the client is destroyed, so the
//       server sees a transport close/error or a ping timeout and never a
//       DISCONNECT packet. With "reconnect":true the client may reconnect
//       by itself (if its opts enabled reconnection).
//   {"cmd":"exit"}
// Reports: {"client","type":"event","event","args"} for every event (onAny),
// {"client","type":"connect","id"}, {"client","type":"connect_error",
// "message","data"}, {"client","type":"disconnect","reason","description"}.

import http from "node:http";
import https from "node:https";
import { io } from "socket.io-client";
import { fromWire, send, serve, toJSONSafe } from "./lib/jsonl.mjs";

// Every socket of one client goes through its own agent, so that "drop" can
// cut exactly that client's TCP connections whatever the transport (long
// polling requests or the websocket) without socket.io getting a say.
function trackingAgent(secure) {
  const Base = secure ? https.Agent : http.Agent;
  class TrackingAgent extends Base {
    constructor() {
      super({ keepAlive: false });
      this.conns = new Set();
      this.blocked = false;
    }

    createConnection(options, cb) {
      const sock = super.createConnection(options, cb);
      if (this.blocked) {
        // No error argument: the request sees a plain hang-up through its
        // own listeners instead of an unhandled socket error.
        sock.destroy();
        return sock;
      }
      this.conns.add(sock);
      sock.once("close", () => this.conns.delete(sock));
      return sock;
    }

    dropAll() {
      for (const sock of this.conns) sock.destroy();
      this.conns.clear();
    }
  }
  return new TrackingAgent();
}

const clients = new Map();

function need(msg) {
  if (typeof msg.client !== "string" || msg.client === "") {
    throw new Error("missing client name");
  }
  const rec = clients.get(msg.client);
  if (!rec) throw new Error(`unknown client ${JSON.stringify(msg.client)}`);
  return rec;
}

// waitFor resolves when the socket emits one of the given events, or rejects
// after ms so that a misbehaving server cannot hang a command forever.
function waitFor(socket, events, ms) {
  return new Promise((resolve, reject) => {
    const handlers = {};
    const done = () => {
      clearTimeout(timer);
      for (const [ev, h] of Object.entries(handlers)) socket.off(ev, h);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${ms} ms waiting for ${events.join("|")}`));
    }, ms);
    for (const ev of events) {
      handlers[ev] = (...args) => {
        done();
        resolve({ event: ev, args });
      };
      socket.on(ev, handlers[ev]);
    }
  });
}

async function connect(msg) {
  const name = msg.client;
  if (typeof name !== "string" || name === "") throw new Error("missing client name");
  if (typeof msg.url !== "string") throw new Error("missing url");
  const old = clients.get(name);
  if (old && old.socket.active) {
    throw new Error(`client ${JSON.stringify(name)} is already connected`);
  }
  const agent = trackingAgent(msg.url.startsWith("https:"));
  const opts = {
    reconnection: false,
    ...(msg.opts ?? {}),
    forceNew: true,
    agent,
  };
  const socket = io(msg.url, opts);
  const rec = { socket, agent };
  clients.set(name, rec);

  socket.onAny((event, ...args) => {
    send({ client: name, type: "event", event, args: toJSONSafe(args) });
  });
  socket.on("connect", () => {
    send({ client: name, type: "connect", id: socket.id });
  });
  socket.on("connect_error", (err) => {
    send({
      client: name,
      type: "connect_error",
      message: err?.message ?? String(err),
      data: toJSONSafe(err?.data),
    });
  });
  socket.on("disconnect", (reason, details) => {
    send({
      client: name,
      type: "disconnect",
      reason,
      description: toJSONSafe(details?.description?.message ?? details?.description ?? null),
    });
  });

  const ms = typeof msg.timeout === "number" ? msg.timeout : 20000;
  const first = await waitFor(socket, ["connect", "connect_error"], ms);
  if (first.event === "connect_error") {
    const err = first.args[0];
    if (!opts.reconnection) clients.delete(name);
    const e = new Error(err?.message ?? String(err));
    e.data = err?.data;
    throw e;
  }
  return { id: socket.id, transport: socket.io.engine?.transport?.name ?? null };
}

async function emit(msg) {
  const { socket } = need(msg);
  if (typeof msg.event !== "string") throw new Error("missing event name");
  const args = Array.isArray(msg.args) ? msg.args.map(fromWire) : [];
  if (typeof msg.ack !== "number") {
    socket.emit(msg.event, ...args);
    return {};
  }
  return new Promise((resolve, reject) => {
    socket.timeout(msg.ack).emit(msg.event, ...args, (err, ...resp) => {
      if (err) reject(new Error(`no ack for ${msg.event}: ${err.message}`));
      else resolve({ ack: toJSONSafe(resp) });
    });
  });
}

async function disconnect(msg) {
  const rec = need(msg);
  clients.delete(msg.client);
  if (rec.socket.connected) {
    const gone = waitFor(rec.socket, ["disconnect"], 5000);
    rec.socket.disconnect();
    await gone;
  } else {
    rec.socket.disconnect();
  }
  return {};
}

async function drop(msg) {
  const rec = need(msg);
  const reconnect = msg.reconnect === true;
  if (!reconnect) {
    clients.delete(msg.client);
    rec.socket.io.reconnection(false);
    rec.agent.blocked = true;
  }
  if (!rec.socket.connected) {
    rec.agent.dropAll();
    return {};
  }
  const gone = waitFor(rec.socket, ["disconnect"], 10000);
  rec.agent.dropAll();
  const { args } = await gone;
  return { reason: args[0] };
}

serve({ connect, emit, disconnect, drop }, async () => {
  for (const { socket } of clients.values()) socket.disconnect();
  clients.clear();
  // Let the DISCONNECT packets reach the sockets before the process ends.
  await new Promise((resolve) => setTimeout(resolve, 50));
});
