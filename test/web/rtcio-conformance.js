// Test-facing API of the rtc.io conformance peer (window.RTCIOConformance).
// Playwright drives it through page.evaluate; every method returns plain JSON
// or a Promise of it, and peers are addressed by a numeric handle so Go code
// never holds a browser object:
//
//   const peer = await RTCIOConformance.connect(url, {auth, name: 'A'});
//   peer.joinRoom('room-1');
//   const cam = await peer.publishCamera('camera', [{who: 'A'}, '$stream']);
//   await peer.waitFor((e) => e.type === 'stream-event' && e.name === 'camera', 15000);
//   RTCIOConformance.get(peer.handle).emit('chat', 'hi');
//
// The string "$stream" inside published args marks where the RTCIOStream goes
// (appended last when absent), so Go tests can place it anywhere.
(function (global) {
  'use strict';

  const L = global.RTCIOConformanceLib;
  const Peer = global.RTCIOConformancePeer;
  const { wire, describeStream } = L;
  const STREAM_MARKER = '$stream';

  function withTimeout(promise, ms, what) {
    let timer;
    const t = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    });
    return Promise.race([promise, t]).finally(() => clearTimeout(timer));
  }

  // Canvas video and oscillator audio, for browsers started without fake
  // capture devices. The frame counter keeps the encoder producing frames.
  function syntheticMedia(audio, video) {
    const tracks = [];
    if (video) {
      const canvas = document.createElement('canvas');
      canvas.width = 320;
      canvas.height = 240;
      const g = canvas.getContext('2d');
      let n = 0;
      const draw = () => {
        g.fillStyle = `hsl(${(n * 7) % 360}, 70%, 40%)`;
        g.fillRect(0, 0, 320, 240);
        g.fillStyle = '#fff';
        g.font = '32px sans-serif';
        g.fillText(`frame ${n++}`, 40, 130);
      };
      draw();
      const timer = setInterval(draw, 33);
      const vt = canvas.captureStream(30).getVideoTracks()[0];
      vt.addEventListener('ended', () => clearInterval(timer));
      tracks.push(vt);
    }
    if (audio) {
      const ctx = new AudioContext();
      const osc = ctx.createOscillator();
      const dest = ctx.createMediaStreamDestination();
      osc.connect(dest);
      osc.start();
      tracks.push(dest.stream.getAudioTracks()[0]);
    }
    return new MediaStream(tracks);
  }

  async function acquireMedia(audio, video, source, timeoutMs) {
    if (source !== 'synthetic' && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
      const req = navigator.mediaDevices.getUserMedia({ audio, video });
      try {
        return { ms: await withTimeout(req, timeoutMs, 'getUserMedia'), source: 'getUserMedia' };
      } catch (err) {
        req.then((ms) => ms.getTracks().forEach((t) => t.stop()), () => {});
        if (source === 'getUserMedia') throw err;
      }
    }
    return { ms: syntheticMedia(audio, video), source: 'synthetic' };
  }

  function placeStream(args, stream) {
    let placed = false;
    const walk = (v, depth) => {
      if (v === STREAM_MARKER) {
        placed = true;
        return stream;
      }
      if (depth > 32 || !v || typeof v !== 'object') return v;
      if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
      const out = {};
      for (const k of Object.keys(v)) out[k] = walk(v[k], depth + 1);
      return out;
    };
    const out = walk(args, 0);
    if (!placed) out.push(stream);
    return out;
  }

  function stripAck(args) {
    return typeof args[args.length - 1] === 'function' ? args.slice(0, -1) : args;
  }

  function mustRemote(peer, id) {
    const r = peer.remotes.get(id);
    if (!r) throw new Error(`no peer connection to ${id}`);
    return r;
  }

  Object.assign(Peer.prototype, {
    // ---- signaling server (app-level room convention) ----
    joinRoom(roomId, name) {
      this.rooms.add(roomId);
      this.socket.emit('join-room', { roomId, name: name ?? this.name });
    },
    leaveRoom(roomId) {
      this.rooms.delete(roomId);
      this.socket.emit('leave-room', { roomId });
    },
    serverEmit(ev, ...args) {
      this.socket.emit(ev, ...args);
    },
    // Holds outgoing #rtcio:message until releaseSignals(), in order. Two
    // peers holding while both renegotiate make offers collide for sure.
    holdSignals() {
      if (!this.heldSignals) this.heldSignals = [];
    },
    releaseSignals() {
      const held = this.heldSignals || [];
      this.heldSignals = null;
      for (const [target, data] of held) this.sendSignal(target, data);
      return held.length;
    },
    // Sends {mid: mediaStreamId} again: the owner answers with its current
    // events, or stays silent once the stream is untracked.
    requestStreamEvents(peerId, mediaStreamId) {
      mustRemote(this, peerId);
      this.sendSignal(peerId, { mid: mediaStreamId });
    },
    // Drops the Engine.IO transport so socket.io reconnects (reconnect tests).
    dropSignaling() {
      this.socket.io.engine.close();
    },

    // ---- events ----
    // rtc.io's socket.emit without a stream: #rtcio:* goes to the server,
    // anything else is broadcast on every peer's ctrl channel.
    emit(ev, ...args) {
      args = stripAck(args);
      if (typeof ev === 'string' && ev.startsWith(wire.INTERNAL_PREFIX)) {
        this.socket.emit(ev, ...args);
        return;
      }
      const env = JSON.stringify({ e: ev, d: args });
      for (const r of this.remotes.values()) this.sendCtrl(r, env);
    },
    peerEmit(peerId, ev, ...args) {
      const r = this.remotes.get(peerId);
      if (!r) return false;
      this.sendCtrl(r, JSON.stringify({ e: ev, d: stripAck(args) }));
      return true;
    },

    // ---- media ----
    async publishCamera(eventName, metadataArgs = [], opts = {}) {
      const { audio = true, video = true, source = 'auto', timeoutMs = 5000 } = opts;
      const got = await acquireMedia(audio, video, source, timeoutMs);
      const stream = new L.RTCIOStream(got.ms);
      stream.removed = {};
      this.localStreams.set(stream.id, stream);
      this.emitStream(eventName, metadataArgs, stream.id);
      return { ...describeStream(stream), source: got.source };
    },
    // socket.emit(ev, ...args) with a stream among the args: records the args
    // in the replay registry and sends the tracks to every connected peer.
    emitStream(eventName, args, rtcioStreamId) {
      const stream = this.localStreams.get(rtcioStreamId);
      if (!stream) throw new Error(`no local stream ${rtcioStreamId}`);
      const full = placeStream(Array.isArray(args) ? args : [args], stream);
      const entry = this.registry.get(stream.id) || { stream, events: {} };
      entry.events[eventName] = full;
      this.registry.set(stream.id, entry);
      this.log({ type: 'published', name: eventName, stream: describeStream(stream) });
      if (this.socket.connected) for (const r of this.remotes.values()) this.addTransceivers(r, stream);
      return describeStream(stream);
    },
    untrackStream(rtcioStreamId) {
      const had = this.registry.delete(rtcioStreamId);
      this.log({ type: 'untracked', rtcioStreamId, had });
      return had;
    },
    // Track removal as rtc.io does it: replaceTrack(null) + inactive.
    removeTrack(rtcioStreamId, kind) {
      const stream = this.localStreams.get(rtcioStreamId);
      const track = stream && stream.mediaStream.getTracks().find((t) => t.kind === kind);
      if (!track) throw new Error(`stream ${rtcioStreamId} has no ${kind} track`);
      stream.mediaStream.removeTrack(track);
      stream.removed[kind] = track;
      this.forEachPeerWithStream(stream, (r) => this.syncStream(r, stream));
      return describeStream(stream);
    },
    // Puts a removed track back (idle same-kind transceiver gets it again).
    restoreTrack(rtcioStreamId, kind) {
      const stream = this.localStreams.get(rtcioStreamId);
      const track = stream && stream.removed[kind];
      if (!track) throw new Error(`stream ${rtcioStreamId} has no removed ${kind} track`);
      delete stream.removed[kind];
      stream.mediaStream.addTrack(track);
      this.forEachPeerWithStream(stream, (r) => this.syncStream(r, stream));
      return describeStream(stream);
    },
    // Track swap: a new same-kind track via replaceTrack, no renegotiation.
    swapTrack(rtcioStreamId, kind) {
      const stream = this.localStreams.get(rtcioStreamId);
      const old = stream && stream.mediaStream.getTracks().find((t) => t.kind === kind);
      if (!old) throw new Error(`stream ${rtcioStreamId} has no ${kind} track`);
      const fresh = old.clone();
      stream.mediaStream.removeTrack(old);
      stream.mediaStream.addTrack(fresh);
      this.forEachPeerWithStream(stream, (r) => this.syncStream(r, stream));
      old.stop();
      return { oldTrackId: old.id, newTrackId: fresh.id };
    },

    // ---- custom channels ----
    createChannel(name, opts = {}) {
      if (!this.channelDefs.has(name)) this.channelDefs.set(name, opts);
      for (const r of this.remotes.values()) this.channelFor(r, name, opts);
      return { name, id: L.channelId(name), label: wire.CHANNEL_PREFIX + name };
    },
    createPeerChannel(peerId, name, opts = {}) {
      this.channelFor(mustRemote(this, peerId), name, opts);
      return { name, id: L.channelId(name), label: wire.CHANNEL_PREFIX + name };
    },
    channelEmit(name, ev, ...args) {
      let n = 0;
      for (const r of this.remotes.values()) {
        const ch = r.channels.get(name);
        if (ch) {
          ch.emit(ev, stripAck(args));
          n++;
        }
      }
      return n;
    },
    channelEmitTo(peerId, name, ev, ...args) {
      const ch = mustRemote(this, peerId).channels.get(name);
      if (!ch) throw new Error(`no channel ${name} to ${peerId}`);
      return ch.emit(ev, stripAck(args));
    },
    // Binary (base64) or text payload, to one peer or all that have the channel.
    channelSend(name, data, opts = {}) {
      const payload = opts.base64 ? L.base64ToBytes(data) : data;
      const targets = opts.peerId ? [mustRemote(this, opts.peerId)] : [...this.remotes.values()];
      let n = 0;
      for (const r of targets) {
        const ch = r.channels.get(name);
        if (ch) {
          ch.write(payload);
          n++;
        }
      }
      return n;
    },
    // Sends a frame straight onto a DataChannel, bypassing envelopes, to test
    // a receiver's filters. target: label ("rtcio:ctrl", "rtcio:ch:x") or id.
    // data: a string, {base64}, {repeat, length} (a long text built here), or
    // {bytes: n} (n zero bytes).
    async sendRaw(peerId, target, data, timeoutMs = 10000) {
      const r = mustRemote(this, peerId);
      const dcs = [r.ctrl, ...[...r.channels.values()].map((c) => c.dc)];
      const dc = dcs.find((d) => d && (d.label === target || d.id === target));
      if (!dc) return { ok: false, error: `no data channel ${target} to ${peerId}` };
      if (dc.readyState !== 'open') {
        await withTimeout(new Promise((res) => dc.addEventListener('open', res, { once: true })), timeoutMs, `open of ${dc.label}`);
      }
      let payload = data;
      if (data && typeof data === 'object') {
        if (data.base64 !== undefined) payload = L.base64ToBytes(data.base64);
        else if (data.repeat !== undefined) payload = String(data.repeat).repeat(Math.ceil(data.length / String(data.repeat).length)).slice(0, data.length);
        else if (data.bytes !== undefined) payload = new Uint8Array(data.bytes);
      }
      const size = typeof payload === 'string' ? payload.length : payload.byteLength;
      try {
        dc.send(payload);
        return { ok: true, label: dc.label, id: dc.id, size };
      } catch (err) {
        return { ok: false, label: dc.label, id: dc.id, size, error: `${err.name}: ${err.message}` };
      }
    },

    // ---- inspection ----
    peerConnections() {
      const peers = [...this.remotes.values()].map((r) => ({
        id: r.id,
        polite: r.polite,
        connectionState: r.pc.connectionState,
        iceConnectionState: r.pc.iceConnectionState,
        signalingState: r.pc.signalingState,
        ctrlState: r.ctrl ? r.ctrl.readyState : 'none',
        connectFired: r.connectFired,
        watchdogArmed: r.timer !== null,
        transceivers: r.pc.getTransceivers().map((t) => ({
          mid: t.mid, direction: t.direction, currentDirection: t.currentDirection,
          kind: (t.sender.track || t.receiver.track || {}).kind, sending: t.sender.track !== null,
        })),
        channels: [...r.channels.values()].map((c) => c.describe()),
        streams: [...r.streams.values()].map((s) => ({ ...describeStream(s), remote: !!s.remote })),
      }));
      return { count: peers.length, peers };
    },
    async stats() {
      const out = {};
      for (const [id, r] of this.remotes) {
        const rep = await r.pc.getStats();
        const res = { inbound: [], outbound: [], selectedPair: null };
        const byId = new Map();
        rep.forEach((s) => byId.set(s.id, s));
        for (const s of byId.values()) {
          if (s.type === 'inbound-rtp') {
            res.inbound.push({ kind: s.kind, mid: s.mid, ssrc: s.ssrc, framesDecoded: s.framesDecoded || 0,
              bytesReceived: s.bytesReceived || 0, packetsReceived: s.packetsReceived || 0, trackIdentifier: s.trackIdentifier,
              packetsLost: s.packetsLost || 0, freezeCount: s.freezeCount || 0, framesPerSecond: s.framesPerSecond || 0,
              keyFramesDecoded: s.keyFramesDecoded || 0, pliCount: s.pliCount || 0, firCount: s.firCount || 0, nackCount: s.nackCount || 0,
              concealedSamples: s.concealedSamples || 0, totalSamplesReceived: s.totalSamplesReceived || 0,
              framesDropped: s.framesDropped || 0 });
          } else if (s.type === 'outbound-rtp') {
            res.outbound.push({ kind: s.kind, mid: s.mid, ssrc: s.ssrc, bytesSent: s.bytesSent || 0,
              packetsSent: s.packetsSent || 0, framesEncoded: s.framesEncoded || 0, targetBitrate: s.targetBitrate || 0,
              framesPerSecond: s.framesPerSecond || 0, pliCount: s.pliCount || 0, firCount: s.firCount || 0,
              retransmittedBytesSent: s.retransmittedBytesSent || 0,
              cpuLimitedSeconds: (s.qualityLimitationDurations && s.qualityLimitationDurations.cpu) || 0 });
          } else if (s.type === 'transport' && s.selectedCandidatePairId) {
            const pair = byId.get(s.selectedCandidatePairId);
            const cand = (cid) => {
              const c = byId.get(cid);
              return c && { address: c.address, port: c.port, candidateType: c.candidateType, protocol: c.protocol };
            };
            if (pair) res.selectedPair = { local: cand(pair.localCandidateId), remote: cand(pair.remoteCandidateId) };
          }
        }
        out[id] = res;
      }
      return out;
    },
    localStreamList() {
      return [...this.localStreams.values()].map((s) => ({ ...describeStream(s), tracked: this.registry.has(s.id),
        events: Object.keys((this.registry.get(s.id) || { events: {} }).events) }));
    },
    summary() {
      return { handle: this.handle, id: this.socket.id || null, connected: this.socket.connected, closed: this.closed,
        lastSeq: this.seq, peers: this.remotes.size, drops: { ...this.drops }, counters: { ...this.counters } };
    },
    eventsSince(seq = 0) {
      return this.events.filter((e) => e.seq > seq);
    },
    // Closes one peer connection locally (the remote's watchdog then acts).
    closePeer(peerId) {
      const r = this.remotes.get(peerId);
      if (r) this.cleanup(r, 'local-close');
      return !!r;
    },
    close() {
      if (this.closed) return;
      this.closed = true;
      for (const w of this.waiters) clearTimeout(w.timer);
      this.waiters.clear();
      for (const r of [...this.remotes.values()]) this.cleanup(r, 'local-close');
      this.socket.disconnect();
      for (const s of this.localStreams.values()) {
        s.mediaStream.getTracks().forEach((t) => t.stop());
        Object.values(s.removed || {}).forEach((t) => t.stop());
      }
    },
  });

  const instances = new Map();
  let nextHandle = 0;

  global.RTCIOConformance = Object.freeze({
    version: 1,
    channelId: L.channelId,
    // Resolves once the socket.io handshake succeeded; rejects on a refused
    // handshake (e.g. auth middleware) or after connectTimeoutMs.
    async connect(url, opts = {}) {
      const peer = new Peer(++nextHandle, url, opts);
      instances.set(peer.handle, peer);
      const s = peer.socket;
      try {
        await withTimeout(new Promise((resolve, reject) => {
          if (s.connected) return resolve();
          s.once('connect', resolve);
          s.on('connect_error', (err) => {
            // socket.io does not retry a handshake its middleware refused.
            if (!s.active) reject(new Error(`socket.io connect refused: ${err && err.message}`));
          });
        }), opts.connectTimeoutMs || 10000, `socket.io connect to ${url}`);
      } catch (err) {
        peer.close();
        throw err;
      }
      return peer;
    },
    get(handle) {
      const p = instances.get(handle);
      if (!p) throw new Error(`no conformance peer with handle ${handle}`);
      return p;
    },
    handles() {
      return [...instances.keys()];
    },
    closeAll() {
      for (const p of [...instances.values()]) p.close();
    },
  });
})(window);
