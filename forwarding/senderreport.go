package forwarding

import (
	"time"

	"github.com/pion/rtcp"
)

// ntpEpochOffset is the number of seconds between the NTP epoch (1900) and
// the Unix epoch (1970).
const ntpEpochOffset = 2208988800

// toNTP converts a wall-clock time to a 64-bit NTP timestamp.
func toNTP(t time.Time) uint64 {
	sec := uint64(t.Unix() + ntpEpochOffset)
	frac := (uint64(t.Nanosecond()) << 32) / uint64(time.Second)
	return sec<<32 | frac
}

// durationToNTP converts a non-negative duration to NTP units (2^-32 s).
func durationToNTP(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	sec := uint64(d / time.Second)
	rem := uint64(d % time.Second)
	return sec<<32 + (rem<<32)/uint64(time.Second)
}

// senderReportTimes returns the NTP and RTP times for a sender report sent at
// wall time wall (now on the publication clock). When the publisher has sent
// a report for the source being forwarded, its NTP<->RTP pairing is carried
// forward by the elapsed time and mapped through this down-track's timestamp
// offset: every down-track of one publisher then lies on that publisher's
// timeline, which is what keeps its audio and video in lip sync. Without one,
// the last forwarded packet's arrival time stands in, on our own clock.
func (d *DownTrack) senderReportTimes(wall time.Time, now int64) (ntp uint64, rtpTime uint32) {
	m := d.munger
	if info := d.pub.sr.Load(); info != nil && info.epoch == m.epoch {
		elapsed := time.Duration(now - info.arrival)
		return info.ntp + durationToNTP(elapsed),
			info.rtp + m.tsOffset + durationToTicks(elapsed, m.clockRate)
	}
	elapsed := time.Duration(now - m.highestArrival)
	return toNTP(wall), m.highestTS + durationToTicks(elapsed, m.clockRate)
}

// sendSenderReport sends one RTCP sender report for the down-track, once it
// has forwarded something.
func (d *DownTrack) sendSenderReport() {
	if !d.munger.started {
		return
	}
	wall := d.pub.cfg.Clock()
	ntp, rtpTime := d.senderReportTimes(wall, int64(wall.Sub(d.pub.base)))
	sr := &rtcp.SenderReport{
		SSRC:        d.cfg.SSRC,
		NTPTime:     ntp,
		RTPTime:     rtpTime,
		PacketCount: d.srPackets,
		OctetCount:  d.srOctets,
	}
	if err := d.cfg.RTCP.WriteRTCP([]rtcp.Packet{sr}); err != nil {
		d.log.Debug("forwarding: sender report failed", "err", err)
		return
	}
	d.stats.senderReports.Add(1)
}
