// Package recorder turns publications into files on disk, one file per
// recorded stream, with a JSON manifest beside each.
//
// A Recorder holds the configuration (output directory, file naming, size
// and duration limits, flush interval). Recorder.Start begins a Recording
// of one stream (an RTCIOStream: typically one video and one audio track);
// each track is added with Recording.Attach (or AddTrack), which returns a
// forwarding.Sink: a recording is just one more subscriber of the stream's
// publications, and it never slows them down: its sinks copy packets into a
// bounded queue and drop when it is full or the recording has stopped.
//
// The recording's goroutine does the rest, per track: a bounded reorder
// buffer (ReorderLatency, ReorderPackets), frame assembly and
// depacketization with pion's depacketizers, and for video a keyframe gate:
// a file starts at a keyframe and, after a loss, video waits for the next
// keyframe (asking the publisher for one through TrackConfig.RequestKeyframe,
// throttled) instead of writing frames that refer to a lost one. Frame times
// come from RTP timestamps on one clock per recording, so losses leave gaps
// and never drift. Tracks are aligned with the publisher's RTCP sender
// reports (forwarding.SenderReportSink) when they have one, by arrival time
// otherwise; the first file waits up to SyncWait for them.
//
// Files are WebM when every codec fits (VP8, VP9, AV1, Opus) and Matroska
// (.mkv) otherwise (H.264). They are written live: an unknown-size segment
// and clusters, flushed to the operating system every FlushInterval (and
// fsynced with Sync), so that a file cut short by kill -9 plays up to the
// last flush. A finished file also gets its duration and a seek index (Cues).
// A file rolls to the next one at MaxFileSize or MaxDuration (at a video
// keyframe when possible), when a track joins late, and for H.264 when the
// parameter sets change.
//
// The manifest (Manifest) is written when a file starts, in state
// "recording", refreshed every CheckpointInterval, and replaced atomically
// when the file ends ("done", or "failed" with the error). A write error,
// such as a full disk, stops the recording cleanly; a small reserve file
// beside the manifest lets the final manifest be written even then. After a
// crash, Recover marks manifests still "recording" as "interrupted"; call it
// at startup.
//
// The muxing is done by github.com/at-wat/ebml-go (mkvcore): a small,
// maintained, pure-Go EBML/Matroska writer without dependencies, the one
// pion's own save-to-webm example uses; it writes the live form we need
// (unknown-size segment and clusters) and has seek head and Cues support. Writing EBML by hand would mean owning a binary format's element
// IDs, variable-size integers and cluster rules, which is exactly what a
// library gets right once for everyone. The package works around two of its
// traits: its writer goroutine stops on the first write error, leaving the
// next write blocked, so our file writer never reports errors to it (they
// are sticky and polled instead); and its package-level default headers are
// shared mutable values, so we pass our own.
package recorder
