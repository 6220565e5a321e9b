// Package forwarding is the media plane: one publication per received track,
// fanned out to down-tracks (one per subscriber) and to sinks such as
// recorders. It rewrites sequence numbers, timestamps and SSRCs per
// subscriber, answers NACKs from a packet history, asks publishers for
// keyframes and keeps a keyframe cache for late joiners. It knows nothing of
// signaling, and nothing of pion/webrtc: the gateway adapts pion's tracks to
// the small interfaces declared here (RTPWriter, RTCPWriter,
// KeyframeRequester, NackSender, Sink).
//
// The gateway's read loop feeds a Publication with WriteRaw (or WriteRTP)
// and HandleSenderReport; each subscriber gets a DownTrack from Subscribe,
// whose HandleRTCP takes the subscriber's PLI, FIR and NACK. Every
// down-track and sink has a bounded queue, so a slow or dead subscriber only
// loses its own packets. A sink has its own goroutine; a down-track has its
// own too, or shares its subscriber's WriterGroup (one goroutine for all the
// tracks of one peer connection, which writes everything queued for all of
// them per wake-up), so goroutines grow with subscribers rather than with
// subscriptions. The per-packet path
// does not allocate: packets live in pooled, reference-counted buffers shared
// by the history, the keyframe cache and every queue.
//
// When the gateway uses this package, its pion interceptors must not also
// generate NACKs for received tracks, answer NACKs for sent tracks or send
// sender reports for them: forwarding does all three itself.
package forwarding
