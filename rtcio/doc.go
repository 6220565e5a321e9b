// Package rtcio is a Go port of the rtc.io peer Socket: a participant that a
// browser running the plain rtc.io client treats as just another peer. It
// speaks the signaling protocol over socket.io, negotiates one WebRTC peer
// connection per remote peer (perfect negotiation), carries ctrl and custom
// data channels, publishes streams with metadata and keeps a replay registry
// so that later peers receive every stream that is still tracked.
package rtcio
