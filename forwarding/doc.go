// Package forwarding is the media plane: one publication per received track,
// fanned out to down-tracks (one per subscriber) and to sinks such as
// recorders. It rewrites sequence numbers, timestamps and SSRCs per
// subscriber, answers NACKs from a packet history, asks publishers for
// keyframes and keeps a keyframe cache for late joiners. It knows nothing of
// signaling.
package forwarding
