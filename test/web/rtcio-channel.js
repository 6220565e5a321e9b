// Shared pieces of the rtc.io conformance peer: wire constants, the channel-id
// hash, the RTCIOStream wrapper, JSON-safe descriptions for the event log, and
// custom data channels. rtcio-conformance.js builds the peer on top of this.
// Written from docs/PROTOCOL.md and the observed behaviour of rtc.io 1.5.1.
(function (global) {
  'use strict';

  const wire = Object.freeze({
    INTERNAL_PREFIX: '#rtcio:',
    MESSAGE: '#rtcio:message',
    INIT_OFFER: '#rtcio:init-offer',
    PEER_LEFT: '#rtcio:peer-left',
    CTRL_LABEL: 'rtcio:ctrl',
    CHANNEL_PREFIX: 'rtcio:ch:',
    PLACEHOLDER_PREFIX: '[RTCIOStream]',
    MAX_CTRL_QUEUE: 1024,
    // Compared against the JS string length (UTF-16 code units), as the real
    // client does, not against the UTF-8 byte count.
    MAX_CTRL_ENVELOPE: 1048576,
    CHANNEL_QUEUE_BUDGET: 1048576,
    CHANNEL_HIGH_WATERMARK: 16 * 1048576,
    CHANNEL_LOW_WATERMARK: 1048576,
  });

  // rtc.io 1.5.1 reserves exactly these names on the ctrl channel.
  // docs/PROTOCOL.md also lists "track-removed"; the real client lets a peer send
  // that one, so we do too (the report to the team says so).
  const RESERVED_CTRL_NAMES = new Set(['peer-connect', 'peer-disconnect', 'track-added']);

  // FNV-1a over UTF-16 code units, folded into SCTP ids 1..1023 (0 is ctrl,
  // and Chromium refuses ids above 1023).
  function channelId(name) {
    let h = 0x811c9dc5;
    for (let i = 0; i < name.length; i++) {
      h ^= name.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    return ((h >>> 0) % 1023) + 1;
  }

  function uuid() {
    if (global.crypto && global.crypto.randomUUID) return global.crypto.randomUUID();
    const b = new Uint8Array(16);
    global.crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  // The publishing side's wrapper and the receiving side's wrapper are the
  // same shape; toJSON is what puts the placeholder into {mid, events}.
  class RTCIOStream {
    constructor(mediaStream, id) {
      this.id = id || uuid();
      this.mediaStream = mediaStream;
    }
    toJSON() {
      return `${wire.PLACEHOLDER_PREFIX} ${this.id}`;
    }
  }

  function describeStream(s) {
    if (!s) return null;
    const tracks = s.mediaStream.getTracks();
    return {
      rtcioStreamId: s.id,
      mediaStreamId: s.mediaStream.id,
      trackKinds: tracks.map((t) => t.kind).sort(),
      trackIds: tracks.map((t) => t.id),
    };
  }

  // Deep copy for the event log: wrappers become {$stream: {...}} so Go tests
  // can see exactly where the receiver substituted its stream.
  function loggable(v, depth = 0) {
    if (v instanceof RTCIOStream) return { $stream: describeStream(v) };
    if (v instanceof MediaStream) return { $mediaStream: v.id };
    if (depth > 32 || v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map((x) => loggable(x, depth + 1));
    const out = {};
    for (const k of Object.keys(v)) out[k] = loggable(v[k], depth + 1);
    return out;
  }

  function bytesToBase64(buf) {
    const u8 = new Uint8Array(buf);
    let s = '';
    for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
    return btoa(s);
  }

  function base64ToBytes(b64) {
    const s = atob(b64);
    const u8 = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) u8[i] = s.charCodeAt(i);
    return u8;
  }

  // One custom channel to one remote peer: a negotiated DataChannel whose id
  // both sides derive from the name, {e, d} envelopes for text, raw binary,
  // and a bounded pre-open queue like the real client's RTCIOChannel.
  class Channel {
    constructor(remote, name, opts, log) {
      this.name = name;
      this.id = channelId(name);
      this.remote = remote;
      this.log = log;
      this.queue = [];
      this.queueBytes = 0;
      this.budget = opts.queueBudget || wire.CHANNEL_QUEUE_BUDGET;
      const init = { negotiated: true, id: this.id };
      for (const k of ['ordered', 'maxRetransmits', 'maxPacketLifeTime']) if (opts[k] !== undefined) init[k] = opts[k];
      this.dc = remote.pc.createDataChannel(wire.CHANNEL_PREFIX + name, init);
      this.dc.binaryType = 'arraybuffer';
      this.dc.bufferedAmountLowThreshold = wire.CHANNEL_LOW_WATERMARK;
      const base = { channel: name, peerId: remote.id };
      this.dc.onopen = () => {
        this.flush();
        this.log({ type: 'channel-open', ...base, id: this.id, label: this.dc.label });
      };
      this.dc.onclose = () => {
        this.queue = [];
        this.queueBytes = 0;
        this.log({ type: 'channel-close', ...base });
      };
      this.dc.onbufferedamountlow = () => this.flush();
      this.dc.onmessage = ({ data }) => this.receive(data, base);
    }

    receive(data, base) {
      if (typeof data !== 'string') {
        const rec = { type: 'channel-data', ...base, byteLength: data.byteLength };
        if (data.byteLength <= 65536) rec.base64 = bytesToBase64(data);
        this.log(rec);
        return;
      }
      let env;
      try {
        env = JSON.parse(data);
      } catch (err) {
        // The real client surfaces this as a local 'error' event on the channel.
        this.log({ type: 'channel-error', ...base, reason: 'invalid-json', length: data.length });
        return;
      }
      if (!env || typeof env.e !== 'string') {
        this.log({ type: 'channel-error', ...base, reason: 'bad-name' });
        return;
      }
      this.log({ type: 'channel-event', ...base, name: env.e, args: Array.isArray(env.d) ? env.d : [] });
    }

    emit(ev, args) {
      return this.write(JSON.stringify({ e: ev, d: args }));
    }

    write(data) {
      const dc = this.dc;
      if (dc.readyState === 'open' && this.queue.length === 0 && dc.bufferedAmount < wire.CHANNEL_HIGH_WATERMARK) {
        dc.send(data);
        return true;
      }
      const size = typeof data === 'string' ? data.length * 2 : data.byteLength;
      if (this.queueBytes + size > this.budget) {
        this.log({ type: 'channel-error', channel: this.name, peerId: this.remote.id, reason: 'queue-budget-exceeded' });
        return false;
      }
      this.queue.push(data);
      this.queueBytes += size;
      return false;
    }

    flush() {
      while (this.queue.length && this.dc.readyState === 'open' && this.dc.bufferedAmount < wire.CHANNEL_HIGH_WATERMARK) {
        const item = this.queue.shift();
        this.queueBytes -= typeof item === 'string' ? item.length * 2 : item.byteLength;
        this.dc.send(item);
      }
    }

    close() {
      if (this.dc.readyState !== 'closed' && this.dc.readyState !== 'closing') this.dc.close();
      this.queue = [];
      this.queueBytes = 0;
    }

    describe() {
      return { name: this.name, id: this.id, label: this.dc.label, state: this.dc.readyState, queued: this.queue.length };
    }
  }

  global.RTCIOConformanceLib = Object.freeze({
    wire, RESERVED_CTRL_NAMES, channelId, uuid, RTCIOStream, describeStream, loggable,
    bytesToBase64, base64ToBytes, Channel,
  });
})(window);
