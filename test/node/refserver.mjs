// refserver: a reference rtc.io signaling server on socket.io 4.8 under Node,
// written from PROTOCOL.md section 2 to behave like rtc.io-server plus the
// room convention of its demo app. Go tests run their rtc.io peers and
// recorders against it to prove they need nothing special from our gateway.
//
// Usage: node refserver.mjs [PORT] [--ping-interval=MS] [--ping-timeout=MS]
// Prints {"listening":PORT} once bound on 127.0.0.1, then one JSON line per
// connection and disconnection ({"type":"connection","id"},
// {"type":"disconnect","id","reason"}) so tests can tell a clean DISCONNECT
// from a lost transport. Exits when stdin closes.

import http from "node:http";
import { createInterface } from "node:readline";
import { Server } from "socket.io";

function parseArgs(argv) {
  const out = { port: 0, pingInterval: undefined, pingTimeout: undefined };
  for (const arg of argv) {
    let m;
    if ((m = /^--ping-interval=(\d+)$/.exec(arg))) out.pingInterval = Number(m[1]);
    else if ((m = /^--ping-timeout=(\d+)$/.exec(arg))) out.pingTimeout = Number(m[1]);
    else if (/^\d+$/.test(arg)) out.port = Number(arg);
    else throw new Error(`unknown argument ${arg}`);
  }
  return out;
}

function send(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const isRoomId = (v) => typeof v === "string" || typeof v === "number";

const args = parseArgs(process.argv.slice(2));
const httpServer = http.createServer();
const opts = { cors: { origin: "*" } };
if (args.pingInterval !== undefined) opts.pingInterval = args.pingInterval;
if (args.pingTimeout !== undefined) opts.pingTimeout = args.pingTimeout;
const io = new Server(httpServer, opts);

// Latest media-state per socket id, replayed to later joiners of a room.
const mediaStates = new Map();

// The library part (rtc.io-server): relay and peer-left hint.
io.on("connection", (socket) => {
  socket.on("#rtcio:message", (msg) => {
    // Relayed unchanged; neither source nor shared room is checked, like the
    // reference. A message without a usable target has nowhere to go.
    if (!isObject(msg) || typeof msg.target !== "string" || msg.target === "") return;
    socket.to(msg.target).emit("#rtcio:message", msg);
  });
});

// The application part (demo room convention).
io.on("connection", (socket) => {
  send({ type: "connection", id: socket.id });

  socket.on("join-room", (payload) => {
    if (!isObject(payload) || !isRoomId(payload.roomId)) return;
    const roomId = String(payload.roomId);
    const name = payload.name;
    socket.data.name = name;
    const existing = [...(io.sockets.adapter.rooms.get(roomId) ?? [])].filter(
      (id) => id !== socket.id,
    );
    socket.join(roomId);
    for (const id of existing) {
      const peer = io.sockets.sockets.get(id);
      socket.emit("user-connected", { id, name: peer?.data?.name });
      const state = mediaStates.get(id);
      if (state !== undefined) socket.emit("media-state", state);
    }
    for (const id of existing) {
      io.to(id).emit("user-connected", { id: socket.id, name });
      io.to(id).emit("#rtcio:init-offer", { source: socket.id });
    }
    socket.emit("join-ok", { roomId });
  });

  socket.on("leave-room", (payload) => {
    if (!isObject(payload) || !isRoomId(payload.roomId)) return;
    const roomId = String(payload.roomId);
    socket.leave(roomId);
    io.to(roomId).emit("user-disconnected", { id: socket.id });
  });

  socket.on("media-state", (payload) => {
    if (!isObject(payload) || !isRoomId(payload.roomId)) return;
    mediaStates.set(socket.id, payload);
    socket.to(String(payload.roomId)).emit("media-state", payload);
  });

  socket.on("stopScreenShare", (payload) => {
    if (!isObject(payload) || !isRoomId(payload.roomId)) return;
    socket.to(String(payload.roomId)).emit("stopScreenShare", payload);
  });

  socket.on("disconnecting", () => {
    for (const room of socket.rooms) {
      if (room === socket.id) continue;
      socket.to(room).emit("user-disconnected", { id: socket.id });
      socket.to(room).emit("#rtcio:peer-left", { id: socket.id });
    }
    mediaStates.delete(socket.id);
  });

  socket.on("disconnect", (reason) => {
    send({ type: "disconnect", id: socket.id, reason });
  });
});

let closing = false;
function shutdown() {
  if (closing) return;
  closing = true;
  io.close(() => process.exit(0));
  // io.close waits for HTTP keep-alive sockets; do not let one hold us up.
  setTimeout(() => process.exit(0), 2000).unref();
}

createInterface({ input: process.stdin }).on("close", shutdown);
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

httpServer.listen(args.port, "127.0.0.1", () => {
  send({ listening: httpServer.address().port });
});
