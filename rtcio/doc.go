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
//   - pion (v4.2) cannot roll back a local offer. When the Go side is polite
//     and both sides offer at once, it cannot accept the remote's offer; the
//     collision resolves only when the remote is the side that rolls back.
//     The impolite side never offers before its first answer, so the
//     initial exchange cannot collide.
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
