// Package loadtest drives an rtcio-gateway (or, for a baseline, a bare pion
// forwarder) with Go WebRTC clients over loopback and measures what a media
// server is judged by: forwarded packets per second, CPU per forwarded
// packet, loss, added one-way latency, join-to-first-keyframe time and
// memory per subscriber.
//
// Every RTP payload the load generator sends ends in a small trailer (see
// Trailer) carrying the stream, a per-stream sequence number and the send
// time. Publishers and subscribers live in the same process (or on the same
// machine's clock), so latency is one clock read minus another, and loss is
// counted per stream from the trailer's sequence numbers, which survive the
// gateway's RTP header rewriting.
//
// Run executes one scenario (fanout, meeting or audio-room) against a Target
// and returns a Result; Sweep repeats fanout over several subscriber counts
// and Plot draws the sweep; Max searches the largest size each server
// completes under a Criterion (SearchMax is the search itself).
// cmd/rtcio-loadtest is the command line around
// this package and cmd/bare-forwarder is the baseline program.
package loadtest
