// Package rtcio is a Go port of the rtc.io peer Socket: a participant that a
// browser running the plain rtc.io client treats as just another peer. It
// speaks the signaling protocol over socket.io, negotiates one WebRTC peer
// connection per remote peer (perfect negotiation), carries ctrl and custom
// data channels, publishes streams with metadata and keeps a replay registry
// so that later peers receive every stream that is still tracked.
//
// # Use
//
// Dial connects to any rtc.io signaling server (ours or the Node reference)
// and returns a *Socket; New attaches a Socket to any Signaling, which lets
// the gateway run one without a network hop. Rooms are application events:
// Server().Emit("join-room", ...).
//
//   - Emit(ev, args...) broadcasts a ctrl envelope to every peer, or, when an
//     argument holds a *Stream, publishes the stream (replay registry,
//     metadata answers, one sendonly transceiver per track on every peer).
//   - On/Once/Off receive ctrl events, stream events (args with the stream
//     placeholder replaced by a *RemoteStream), server events, and the
//     lifecycle events peer-connect, peer-disconnect, track-added and
//     track-removed. Handlers run one at a time on the Socket's dispatch
//     goroutine and may call back into the Socket.
//   - Peer(id) addresses one peer: Emit, On, CreateChannel, State, Stats.
//   - CreateChannel(name) opens a broadcast custom channel on every current
//     and future peer; Channel.Send reports backpressure against its
//     watermarks and Drain/WaitDrain signal when to resume.
//   - UntrackStream, RemoveStream, RequestMetadata and Hooks are what a relay
//     needs: retire a stream, stop sending it, re-ask an owner for its
//     events, and see every received track and its end.
//
// # Differences from the JavaScript client
//
//   - pion (v4.2) has no rollback at all. The polite side therefore sends
//     its renegotiation offers before applying them and applies one only
//     when its answer arrives; "rolling back" is forgetting the unapplied
//     offer (see negotiate.go). The remote cannot tell the difference. Its
//     new transceivers get mids like "rtcio3" instead of numbers, so that a
//     forgotten offer's mids never meet the remote's. The first offer is
//     applied at once: it cannot collide, since the impolite side never
//     offers before its first answer. PeerState counts rollbacks and
//     ignored offers.
//   - Known interop issue, not ours to fix: when the Go side is impolite and
//     a collision makes Chromium (156) roll back, Chromium keeps the
//     header-extension ids of its rolled-back offer; where they differ from
//     pion's (pion numbers extensions in registration order: sdes:mid is 1)
//     Chromium's next offer fails with "A BUNDLE group contains a codec
//     collision for header extension id=N" and its new tracks never arrive.
//     With the Go side polite nothing is rolled back in the browser.
//   - Custom channels are created when CreateChannel returns: a message
//     sent after both ends returned from it always arrives, while one sent
//     before the receiving end created the channel may be lost (pion hands
//     it to its in-band channel acceptor, which discards it).
//   - pion announces a remote track with its first RTP packet, browsers
//     when the description is applied: a track removed before any of its
//     packets arrived is never seen, so it fires neither track-added nor
//     track-removed.
//   - ReplaceTrack keeps the sender but a pion sample track restarts RTP
//     sequence numbers; see Stream.ReplaceTrack.
//   - There are no default STUN servers (Options.ICEServers).
//   - Emitting one stream under a second event name does not add a second set
//     of transceivers (the JavaScript client does).
//   - A metadata answer taken by RequestMetadata does not fire the stream's
//     listeners again.
//   - Custom channels drop incoming envelopes named like lifecycle or channel
//     events (open, close, drain, data) as well as reserved names.
package rtcio
