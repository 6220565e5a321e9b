// The protocol engine of the rtc.io conformance peer, written from
// docs/PROTOCOL.md (sections 2-7) and checked against the behaviour of the
// rtc.io 1.5.1 client: signaling queue, perfect negotiation, trickle ICE,
// stream publishing and metadata exchange, ctrl channel filters, lifecycle and
// watchdog. It uses the browser's own RTCPeerConnection and the socket.io-client
// 4.x browser build. rtcio-conformance.js adds the test-facing API on top.
//
// Everything observable goes to peer.events (JSON-safe records with an
// increasing seq), so tests can assert on it and wait for it.
(function (global) {
  'use strict';

  const L = global.RTCIOConformanceLib;
  const { wire, loggable } = L;

  function signalKind(data) {
    if (!data || typeof data !== 'object') return 'invalid';
    if (data.description) return data.description.type || 'description';
    if (data.candidate) return data.candidate.candidate ? 'candidate' : 'empty-candidate';
    if (data.events) return 'mid-answer';
    if (data.mid) return 'mid-request';
    return 'unknown';
  }

  // Candidate address check for the loopback-only rule: the page never offers
  // a non-loopback (or mDNS) candidate, so no peer is ever told to send
  // anywhere but 127.0.0.0/8 or ::1.
  function isLoopbackCandidate(c) {
    const parts = (c.candidate || '').split(' ');
    const addr = c.address || parts[4] || '';
    return addr.startsWith('127.') || addr === '::1';
  }

  // Predicates come from Go as source text: either an expression over the
  // parameter ("e.type === 'peer-connect'") or a function ("(e) => ...").
  function compilePredicate(pred, param) {
    if (typeof pred === 'function') return pred;
    const f = new Function(param, `return (${pred});`);
    return (x) => {
      const r = f(x);
      return typeof r === 'function' ? r(x) : r;
    };
  }

  class ConformancePeer {
    constructor(handle, url, opts) {
      this.handle = handle;
      this.opts = opts;
      this.name = opts.name || '';
      this.events = [];
      this.seq = 0;
      this.waiters = new Set();
      this.drops = { total: 0, nonText: 0, tooLarge: 0, invalidJson: 0, badName: 0, internal: 0, reserved: 0 };
      this.counters = {
        ignoredOffers: 0, rollbacks: 0, staleAnswers: 0, srdFailures: 0, offersSent: 0, answersSent: 0,
        candidateErrors: 0, emptyCandidates: 0, filteredCandidates: 0, ctrlQueueDropped: 0, badSignals: 0,
      };
      this.remotes = new Map(); // socket id -> remote peer state
      this.queues = new Map(); // socket id -> tail of its signaling promise chain
      this.registry = new Map(); // RTCIOStream id -> {stream, events: {ev: args}}
      this.localStreams = new Map(); // RTCIOStream id -> RTCIOStream, kept after untrack
      this.channelDefs = new Map(); // broadcast channel name -> options
      this.rooms = new Set();
      this.heldSignals = null; // outgoing #rtcio:message held by holdSignals()
      this.connectedOnce = false;
      this.closed = false;
      const wd = opts.watchdog || {};
      this.watchdog = { timeout: wd.timeout ?? 12000, hintTimeout: wd.hintTimeout ?? 2500, hintTTL: wd.hintTTL ?? 30000 };
      this.rtcConfig = { iceServers: opts.iceServers || [] };

      const ioOpts = { forceNew: true, auth: opts.auth || {}, reconnectionDelay: 200, reconnectionDelayMax: 1000 };
      if (opts.transports) ioOpts.transports = opts.transports;
      if (opts.path) ioOpts.path = opts.path;
      const s = (this.socket = global.io(url, ioOpts));
      s.on('connect', () => this.onSignalingConnect());
      s.on('disconnect', (reason) => this.log({ type: 'socket-disconnect', reason }));
      s.on('connect_error', (err) => this.log({ type: 'socket-error', message: String(err && err.message) }));
      s.on(wire.INIT_OFFER, (p) => this.onInitOffer(p));
      s.on(wire.MESSAGE, (p) => this.enqueueSignal(p));
      s.on(wire.PEER_LEFT, (p) => this.onPeerLeftHint(p, wire.PEER_LEFT));
      // rtc.io 1.5.1 also takes the app-level user-disconnected as the same hint.
      s.on('user-disconnected', (p) => this.onPeerLeftHint(p, 'user-disconnected'));
      s.onAny((ev, ...args) => {
        if (ev !== wire.MESSAGE) this.log({ type: 'server', name: ev, args: loggable(args) });
      });
    }

    get id() {
      return this.socket.id;
    }

    // ---- event log -------------------------------------------------------

    log(rec) {
      rec.seq = ++this.seq;
      rec.t = Math.round(performance.now());
      this.events.push(rec);
      if (this.events.length > 20000) this.events.splice(0, 5000);
      if (this.opts.debug) console.debug(`[conformance ${this.handle}]`, JSON.stringify(rec));
      for (const w of this.waiters) {
        let hit = false;
        try {
          hit = rec.seq > w.since && w.fn(rec);
        } catch (err) {
          hit = false;
        }
        if (hit) {
          clearTimeout(w.timer);
          this.waiters.delete(w);
          w.resolve(rec);
        }
      }
    }

    // Resolves with the first logged record (seq > since) matching pred.
    waitFor(pred, timeoutMs = 10000, since = 0) {
      const fn = compilePredicate(pred, 'e');
      const found = this.events.find((e) => e.seq > since && fn(e));
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = { fn, since, resolve };
        w.timer = setTimeout(() => {
          this.waiters.delete(w);
          const tail = JSON.stringify(this.events.slice(-20));
          reject(new Error(`waitFor(${String(pred).slice(0, 200)}) timed out after ${timeoutMs} ms; last events: ${tail}`));
        }, timeoutMs);
        this.waiters.add(w);
      });
    }

    // Polls getStats (stats only change by sampling) until pred(stats) holds.
    async waitForStats(pred, timeoutMs = 15000) {
      const fn = compilePredicate(pred, 's');
      const deadline = performance.now() + timeoutMs;
      let last;
      for (;;) {
        last = await this.stats();
        if (fn(last)) return last;
        if (performance.now() > deadline) throw new Error(`waitForStats timed out after ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    // ---- signaling -------------------------------------------------------

    onSignalingConnect() {
      this.log({ type: 'socket-connect', id: this.socket.id, reconnect: this.connectedOnce });
      if (!this.connectedOnce) {
        this.connectedOnce = true;
        return;
      }
      // A reconnect: kick an ICE restart on unhealthy peers so the recovery
      // offer rides the new signaling connection (the watchdog still decides).
      for (const r of this.remotes.values()) {
        const st = r.pc.connectionState;
        if (st === 'disconnected' || st === 'failed') {
          try { r.pc.restartIce(); } catch (err) { /* closed meanwhile */ }
          this.log({ type: 'ice-restart', peerId: r.id, why: 'signaling-reconnect' });
        }
      }
      // The library never re-joins; this opt-in mimics an app that does.
      if (this.opts.rejoinOnReconnect) for (const room of this.rooms) this.socket.emit('join-room', { roomId: room, name: this.name });
    }

    sendSignal(target, data) {
      if (this.heldSignals) {
        this.heldSignals.push([target, data]);
        return;
      }
      this.log({ type: 'signal-out', kind: signalKind(data), peerId: target, mid: data.mid });
      this.socket.emit(wire.MESSAGE, { source: this.socket.id, target, data });
    }

    onInitOffer(p) {
      if (!p || typeof p.source !== 'string' || !p.source) {
        this.counters.badSignals++;
        this.log({ type: 'bad-signal', event: wire.INIT_OFFER, payload: loggable(p) });
        return;
      }
      this.log({ type: 'init-offer', peerId: p.source });
      const old = this.remotes.get(p.source);
      if (old) this.cleanup(old, 'replaced-by-init-offer');
      const remote = this.createRemote(p.source, true);
      for (const entry of this.registry.values()) this.addTransceivers(remote, entry.stream);
      this.replayChannels(remote);
    }

    // Messages from one source run strictly one after another.
    enqueueSignal(p) {
      if (!p || typeof p.source !== 'string' || !p.source || !p.data || typeof p.data !== 'object') {
        this.counters.badSignals++;
        this.log({ type: 'bad-signal', event: wire.MESSAGE, payload: loggable(p) });
        return;
      }
      const src = p.source;
      const cur = (this.queues.get(src) || Promise.resolve())
        .then(() => this.handleSignal(src, p.data))
        .catch((err) => this.log({ type: 'signal-error', peerId: src, message: String(err && err.message) }))
        .finally(() => {
          if (this.queues.get(src) === cur) this.queues.delete(src);
        });
      this.queues.set(src, cur);
    }

    async handleSignal(src, data) {
      this.log({ type: 'signal-in', kind: signalKind(data), peerId: src, mid: data.mid });
      let remote = this.remotes.get(src);
      let isNew = false;
      if (!remote) {
        // Unknown source: impolite, and replay waits until the first
        // description is handled so our own offer does not race it.
        remote = this.createRemote(src, false);
        isNew = true;
      }
      const { description, candidate, mid, events } = data;
      if (description) return this.handleDescription(remote, description, isNew);
      if (candidate) return this.handleCandidate(remote, candidate);
      if (events) return this.handleStreamEvents(remote, mid, events);
      if (mid) return this.answerStreamRequest(remote, mid);
    }

    async handleDescription(remote, desc, isNew) {
      const pc = remote.pc;
      const readyForOffer = !remote.makingOffer && (pc.signalingState === 'stable' || remote.srdAnswerPending);
      const collision = desc.type === 'offer' && !readyForOffer;
      remote.ignoreOffer = !remote.polite && collision;
      if (remote.ignoreOffer) {
        this.counters.ignoredOffers++;
        this.log({ type: 'negotiation', peerId: remote.id, action: 'ignored-offer' });
        return;
      }
      remote.srdAnswerPending = desc.type === 'answer';
      try {
        if (collision) {
          this.counters.rollbacks++;
          this.log({ type: 'negotiation', peerId: remote.id, action: 'rollback' });
        }
        await pc.setRemoteDescription(desc); // implicit rollback on collision
      } catch (err) {
        if (err && err.name === 'InvalidStateError' && collision) {
          await pc.setLocalDescription({ type: 'rollback' });
          await pc.setRemoteDescription(desc);
        } else if (desc.type === 'answer' && pc.signalingState === 'stable') {
          this.counters.staleAnswers++;
          this.log({ type: 'negotiation', peerId: remote.id, action: 'stale-answer' });
          return;
        } else {
          this.counters.srdFailures++;
          this.log({ type: 'negotiation', peerId: remote.id, action: 'srd-failed', message: String(err && err.message) });
          return;
        }
      } finally {
        remote.srdAnswerPending = false;
      }
      if (desc.type === 'offer') {
        await pc.setLocalDescription();
        this.counters.answersSent++;
        this.sendSignal(remote.id, { description: pc.localDescription.toJSON() });
      }
      if (isNew) {
        queueMicrotask(() => {
          if (this.remotes.get(remote.id) === remote) for (const e of this.registry.values()) this.addTransceivers(remote, e.stream);
        });
        queueMicrotask(() => {
          if (this.remotes.get(remote.id) === remote) this.replayChannels(remote);
        });
      }
    }

    async handleCandidate(remote, cand) {
      if (!cand.candidate) {
        // End-of-candidates marker: harmless whether or not the browser takes it.
        this.counters.emptyCandidates++;
        try { await remote.pc.addIceCandidate(cand); } catch (err) { /* tolerated */ }
        return;
      }
      try {
        await remote.pc.addIceCandidate(cand);
      } catch (err) {
        if (remote.ignoreOffer) return;
        this.counters.candidateErrors++;
        this.log({ type: 'candidate-error', peerId: remote.id, message: String(err && err.message) });
      }
    }

    // ---- peer connections ---------------------------------------------------

    createRemote(id, polite) {
      const pc = new RTCPeerConnection(this.rtcConfig);
      const remote = {
        id, pc, polite, makingOffer: false, ignoreOffer: false, srdAnswerPending: false, negNeeded: false,
        negInProgress: false, ctrl: null, ctrlQueue: [], channels: new Map(), channelIds: new Map(),
        connectFired: false, streams: new Map(), senders: new Map(), timer: null, peerLeftHintAt: 0,
      };
      this.remotes.set(id, remote);
      this.log({ type: 'peer-created', peerId: id, polite });
      pc.ondatachannel = ({ channel }) => {
        // Every rtc.io channel is negotiated; anything in-band is foreign.
        this.log({ type: 'unexpected-datachannel', peerId: id, label: channel.label });
        channel.close();
      };
      pc.ontrack = (ev) => this.onTrack(remote, ev);
      pc.onicecandidate = ({ candidate }) => {
        if (!candidate) return;
        if (this.opts.loopbackOnly !== false && !isLoopbackCandidate(candidate)) {
          this.counters.filteredCandidates++;
          return;
        }
        this.sendSignal(id, { candidate: candidate.toJSON() });
      };
      pc.onconnectionstatechange = () => this.onConnectionState(remote);
      pc.oniceconnectionstatechange = () => {
        if (pc.iceConnectionState === 'closed') this.cleanup(remote, 'ice-closed');
      };
      pc.onsignalingstatechange = () => this.log({ type: 'signaling-state', peerId: id, state: pc.signalingState });
      pc.onnegotiationneeded = () => this.negotiate(remote);
      const ctrl = pc.createDataChannel(wire.CTRL_LABEL, { negotiated: true, id: 0, ordered: true });
      this.setupCtrl(remote, ctrl);
      return remote;
    }

    // Rapid negotiationneeded events collapse into one offer round.
    async negotiate(remote) {
      remote.negNeeded = true;
      if (remote.negInProgress) return;
      await Promise.resolve();
      while (remote.negNeeded) {
        remote.negNeeded = false;
        remote.negInProgress = true;
        try {
          remote.makingOffer = true;
          await remote.pc.setLocalDescription();
          this.counters.offersSent++;
          this.sendSignal(remote.id, { description: remote.pc.localDescription.toJSON() });
        } catch (err) {
          this.log({ type: 'negotiation', peerId: remote.id, action: 'offer-failed', message: String(err && err.message) });
        } finally {
          remote.makingOffer = false;
          remote.negInProgress = false;
        }
      }
    }

    onConnectionState(remote) {
      const st = remote.pc.connectionState;
      this.log({ type: 'pc-state', peerId: remote.id, state: st });
      if (st === 'connected') this.disarm(remote);
      else if (st === 'disconnected') this.arm(remote);
      else if (st === 'failed') {
        try { remote.pc.restartIce(); } catch (err) { /* closed meanwhile */ }
        this.log({ type: 'ice-restart', peerId: remote.id, why: 'failed' });
        this.arm(remote);
      } else if (st === 'closed') this.cleanup(remote, 'pc-closed');
    }

    arm(remote) {
      this.disarm(remote);
      const fresh = remote.peerLeftHintAt > 0 && Date.now() - remote.peerLeftHintAt < this.watchdog.hintTTL;
      const ms = fresh ? this.watchdog.hintTimeout : this.watchdog.timeout;
      this.log({ type: 'watchdog-armed', peerId: remote.id, ms, hint: fresh });
      remote.timer = setTimeout(() => {
        remote.timer = null;
        const st = remote.pc.connectionState;
        if (st === 'connected' || st === 'closed') return;
        this.log({ type: 'watchdog-expired', peerId: remote.id, state: st });
        this.cleanup(remote, 'watchdog');
      }, ms);
    }

    disarm(remote) {
      if (remote.timer) clearTimeout(remote.timer);
      remote.timer = null;
    }

    // The server's word that a peer left is a hint: it closes a peer at once
    // only when WebRTC already looks unhealthy, otherwise it shortens the
    // watchdog for a while.
    onPeerLeftHint(p, via) {
      const id = p && p.id;
      const remote = id && this.remotes.get(id);
      if (!remote) return;
      const st = remote.pc.connectionState;
      if (st === 'closed') return;
      remote.peerLeftHintAt = Date.now();
      this.log({ type: 'peer-left-hint', peerId: id, via, state: st });
      if (st === 'disconnected' || st === 'failed') this.cleanup(remote, 'peer-left-hint');
    }

    cleanup(remote, reason) {
      if (this.remotes.get(remote.id) !== remote) return;
      this.remotes.delete(remote.id);
      this.queues.delete(remote.id);
      this.disarm(remote);
      if (remote.ctrl && remote.ctrl.readyState !== 'closed' && remote.ctrl.readyState !== 'closing') remote.ctrl.close();
      remote.ctrlQueue.length = 0;
      for (const ch of remote.channels.values()) ch.close();
      for (const s of remote.streams.values()) if (s.dispose) s.dispose();
      try { remote.pc.close(); } catch (err) { /* already closed */ }
      for (const v of document.querySelectorAll(`video[data-peer="${CSS.escape(remote.id)}"]`)) v.remove();
      this.log({ type: 'peer-closed', peerId: remote.id, reason });
      // peer-disconnect pairs with a peer-connect that actually happened.
      if (remote.connectFired) this.log({ type: 'peer-disconnect', peerId: remote.id });
    }

    // ---- ctrl channel --------------------------------------------------------

    setupCtrl(remote, dc) {
      dc.binaryType = 'arraybuffer';
      remote.ctrl = dc;
      dc.onopen = () => {
        this.flushCtrl(remote);
        this.log({ type: 'peer-connect', peerId: remote.id });
        remote.connectFired = true;
      };
      dc.onclose = () => {
        remote.ctrlQueue.length = 0;
      };
      dc.onmessage = ({ data }) => this.receiveCtrl(remote, data);
    }

    drop(remote, reason, extra) {
      this.drops.total++;
      this.drops[reason]++;
      this.log({ type: 'drop', via: 'ctrl', peerId: remote.id, reason, ...extra });
    }

    receiveCtrl(remote, data) {
      if (typeof data !== 'string') return this.drop(remote, 'nonText', { byteLength: data.byteLength });
      if (data.length > wire.MAX_CTRL_ENVELOPE) return this.drop(remote, 'tooLarge', { length: data.length });
      let env;
      try {
        env = JSON.parse(data);
      } catch (err) {
        return this.drop(remote, 'invalidJson', { length: data.length });
      }
      const name = env && env.e;
      if (typeof name !== 'string') return this.drop(remote, 'badName', {});
      if (name.startsWith(wire.INTERNAL_PREFIX)) return this.drop(remote, 'internal', { name });
      if (L.RESERVED_CTRL_NAMES.has(name)) return this.drop(remote, 'reserved', { name });
      this.log({ type: 'event', via: 'ctrl', peerId: remote.id, name, args: Array.isArray(env.d) ? env.d : [] });
    }

    sendCtrl(remote, envelope) {
      const st = remote.ctrl && remote.ctrl.readyState;
      if (st === 'open') {
        try {
          remote.ctrl.send(envelope);
          return;
        } catch (err) { /* fall through to the queue */ }
      } else if (st === 'closing' || st === 'closed') {
        return;
      }
      if (remote.ctrlQueue.length >= wire.MAX_CTRL_QUEUE) {
        remote.ctrlQueue.shift();
        this.counters.ctrlQueueDropped++;
      }
      remote.ctrlQueue.push(envelope);
    }

    flushCtrl(remote) {
      while (remote.ctrlQueue.length && remote.ctrl.readyState === 'open') remote.ctrl.send(remote.ctrlQueue.shift());
    }

    // ---- custom channels -------------------------------------------------------

    channelFor(remote, name, opts) {
      let ch = remote.channels.get(name);
      if (ch) return ch;
      const id = L.channelId(name);
      const taken = remote.channelIds.get(id);
      if (taken && taken !== name) {
        throw new Error(`channel '${name}' hash-collides with '${taken}' on peer ${remote.id} (both use SCTP id ${id})`);
      }
      remote.channelIds.set(id, name);
      ch = new L.Channel(remote, name, opts || {}, (rec) => this.log(rec));
      remote.channels.set(name, ch);
      return ch;
    }

    replayChannels(remote) {
      for (const [name, opts] of this.channelDefs) {
        try {
          this.channelFor(remote, name, opts);
        } catch (err) {
          this.log({ type: 'channel-error', channel: name, peerId: remote.id, reason: String(err.message) });
        }
      }
    }
  }

  global.RTCIOConformancePeer = ConformancePeer;
})(window);
