// Media half of the rtc.io conformance peer (docs/PROTOCOL.md section 6): the
// receive rules (first stream id, {mid} request, placeholder substitution,
// track-added/track-removed) and the publish rules (one sendonly transceiver
// per track, idle reuse, replaceTrack swap, inactive on removal, answering
// {mid} only while the stream is tracked). Mixed into RTCIOConformancePeer.
(function (global) {
  'use strict';

  const L = global.RTCIOConformanceLib;
  const { wire, RTCIOStream, describeStream, loggable } = L;

  Object.assign(global.RTCIOConformancePeer.prototype, {
    // ---- media: receive side ----------------------------------------------

    onTrack(remote, { transceiver, track, streams }) {
      let ms = streams[0];
      if (!ms) {
        ms = new MediaStream([track]);
        this.log({ type: 'synthetic-stream', peerId: remote.id, kind: track.kind });
      }
      if (!transceiver.mid) return;
      this.log({ type: 'track', peerId: remote.id, mediaStreamId: ms.id, kind: track.kind, trackId: track.id, mid: transceiver.mid });
      const known = remote.streams.get(ms.id);
      if (known) {
        const own = known.mediaStream;
        const same = own.getTracks().find((t) => t.kind === track.kind);
        if (same && same.id !== track.id) own.removeTrack(same);
        if (!own.getTrackById(track.id)) own.addTrack(track);
        this.log({ type: 'track-added', via: 'ontrack', peerId: remote.id, stream: describeStream(known), track: { id: track.id, kind: track.kind } });
        this.render(remote, known);
        return;
      }
      const wrapper = new RTCIOStream(ms);
      wrapper.remote = true;
      remote.streams.set(ms.id, wrapper);
      // Platform-driven changes only: the browser adding or dropping a track of
      // this remote stream (a sender went inactive, or video joined audio).
      const onAdd = (e) => this.log({ type: 'track-added', via: 'addtrack', peerId: remote.id, stream: describeStream(wrapper), track: { id: e.track.id, kind: e.track.kind } });
      const onRemove = (e) => this.log({ type: 'track-removed', peerId: remote.id, stream: describeStream(wrapper), track: { id: e.track.id, kind: e.track.kind } });
      ms.addEventListener('addtrack', onAdd);
      ms.addEventListener('removetrack', onRemove);
      wrapper.dispose = () => {
        ms.removeEventListener('addtrack', onAdd);
        ms.removeEventListener('removetrack', onRemove);
      };
      this.render(remote, wrapper);
      this.sendSignal(remote.id, { mid: ms.id });
    },

    handleStreamEvents(remote, mid, events) {
      const wrapper = remote.streams.get(mid);
      if (!wrapper) {
        this.log({ type: 'stream-events-unknown', peerId: remote.id, mid });
        return;
      }
      if (typeof events !== 'object' || Array.isArray(events)) {
        this.log({ type: 'stream-events-invalid', peerId: remote.id, mid });
        return;
      }
      for (const name of Object.keys(events)) {
        if (!Array.isArray(events[name])) {
          this.log({ type: 'stream-events-invalid', peerId: remote.id, mid, name });
          continue;
        }
        const args = events[name].map((a) => this.substitute(a, wrapper));
        this.log({ type: 'stream-event', peerId: remote.id, name, args: loggable(args), stream: describeStream(wrapper) });
      }
    },

    // Replaces every "[RTCIOStream] <id>" with the wrapper and adopts <id>.
    substitute(v, wrapper, depth = 0) {
      if (typeof v === 'string' && v.startsWith(wire.PLACEHOLDER_PREFIX)) {
        wrapper.id = v.replace(`${wire.PLACEHOLDER_PREFIX} `, '');
        return wrapper;
      }
      if (depth > 32 || !v || typeof v !== 'object') return v;
      for (const k of Object.keys(v)) v[k] = this.substitute(v[k], wrapper, depth + 1);
      return v;
    },

    render(remote, wrapper) {
      if (this.opts.render === false || !wrapper.mediaStream.getVideoTracks().length) return;
      const box = document.getElementById('media');
      if (!box || box.querySelector(`video[data-stream="${CSS.escape(wrapper.mediaStream.id)}"]`)) return;
      const v = document.createElement('video');
      Object.assign(v, { muted: true, autoplay: true, playsInline: true, srcObject: wrapper.mediaStream });
      v.dataset.stream = wrapper.mediaStream.id;
      v.dataset.peer = remote.id;
      box.appendChild(v);
      v.play().catch(() => {});
    },

    // ---- media: publish side ----------------------------------------------

    answerStreamRequest(remote, mid) {
      const s = remote.streams.get(mid);
      const entry = s && this.registry.get(s.id);
      if (!entry || !Object.keys(entry.events).length) {
        // Unknown or untracked stream: silence is the protocol's answer.
        this.log({ type: 'stream-request-unanswered', peerId: remote.id, mid });
        return;
      }
      // JSON round trip runs RTCIOStream.toJSON, which writes the placeholder.
      const events = JSON.parse(JSON.stringify(entry.events));
      this.sendSignal(remote.id, { mid, events });
    },

    // One sendonly transceiver per track, reusing an idle unclaimed one of the
    // same kind. Like rtc.io 1.5.1, emitting the same stream again adds
    // another set of transceivers rather than recognising the old ones.
    addTransceivers(remote, stream) {
      const msid = stream.mediaStream.id;
      remote.streams.set(msid, stream);
      if (!remote.senders.has(msid)) remote.senders.set(msid, []);
      const mine = remote.senders.get(msid);
      for (const track of stream.mediaStream.getTracks()) {
        const claimed = new Set([...remote.senders.values()].flat().map((t) => t.mid));
        const idle = remote.pc.getTransceivers().find((t) => t.sender.track === null && t.receiver.track && t.receiver.track.kind === track.kind &&
          ['sendonly', 'sendrecv', 'inactive'].includes(t.direction) && !claimed.has(t.mid));
        if (idle) {
          idle.sender.replaceTrack(track);
          idle.direction = 'sendonly';
          if (idle.sender.setStreams) idle.sender.setStreams(stream.mediaStream);
          mine.push(idle);
        } else {
          mine.push(remote.pc.addTransceiver(track, { direction: 'sendonly', streams: [stream.mediaStream] }));
        }
      }
    },

    // Re-applies a local stream's current tracks to one peer's transceivers:
    // same-kind swap via replaceTrack, a gone track -> replaceTrack(null) and
    // inactive, a new track -> a new sendonly transceiver.
    syncStream(remote, stream) {
      const mine = remote.senders.get(stream.mediaStream.id) || [];
      const tracks = stream.mediaStream.getTracks();
      const ids = new Set(tracks.map((t) => t.id));
      const claimed = new Set();
      for (const t of mine) if (t.sender.track && ids.has(t.sender.track.id)) claimed.add(t.sender.track.id);
      for (const t of mine) {
        const cur = t.sender.track;
        if (cur && ids.has(cur.id)) continue;
        const kind = cur ? cur.kind : t.receiver.track && t.receiver.track.kind;
        const repl = tracks.find((x) => x.kind === kind && !claimed.has(x.id));
        if (repl) {
          t.sender.replaceTrack(repl);
          if (t.direction !== 'sendonly') t.direction = 'sendonly';
          if (t.sender.setStreams) t.sender.setStreams(stream.mediaStream);
          claimed.add(repl.id);
        } else if (cur) {
          t.sender.replaceTrack(null);
          t.direction = 'inactive';
        }
      }
      for (const track of tracks) {
        if (claimed.has(track.id)) continue;
        mine.push(remote.pc.addTransceiver(track, { direction: 'sendonly', streams: [stream.mediaStream] }));
        claimed.add(track.id);
      }
      remote.senders.set(stream.mediaStream.id, mine);
    },

    forEachPeerWithStream(stream, fn) {
      for (const r of this.remotes.values()) if (r.senders.has(stream.mediaStream.id)) fn(r);
    },
  });
})(window);
