package forwarding

// keyframeCache holds the latest keyframe of a video publication and every
// packet after it, so a new subscriber can be started from a decodable point
// at once instead of waiting for the publisher's next keyframe. It is bounded
// by packets and bytes; when a group of pictures outgrows it, the cache is
// dropped until the next keyframe. It is owned by the ingest path.
type keyframeCache struct {
	maxPackets int
	maxBytes   int

	pkts  []*packet
	bytes int

	hasKey     bool   // pkts[0] starts a keyframe
	frameStart int    // index in pkts of the first packet of the newest frame
	frameTS    uint32 // RTP timestamp of the newest frame
	haveFrame  bool
}

func newKeyframeCache(maxPackets, maxBytes int) *keyframeCache {
	return &keyframeCache{
		maxPackets: maxPackets,
		maxBytes:   maxBytes,
		pkts:       make([]*packet, 0, maxPackets+1),
	}
}

// add appends an upstream packet, taking a reference if it keeps it.
func (c *keyframeCache) add(p *packet) {
	if !c.haveFrame || int32(p.hdr.Timestamp-c.frameTS) > 0 {
		// A new frame. Without a keyframe, only the frame in progress is
		// worth keeping: its keyframe marker may be in a later packet
		// (an H.264 frame that starts with SEI, for instance).
		c.haveFrame = true
		c.frameTS = p.hdr.Timestamp
		if !c.hasKey {
			c.reset()
		}
		c.frameStart = len(c.pkts)
	}
	p.retain(1)
	c.pkts = append(c.pkts, p)
	c.bytes += p.size
	if p.keyframe && (!c.hasKey || c.frameStart > 0) && p.hdr.Timestamp == c.frameTS {
		// Start the cache at the first packet of the keyframe's frame,
		// so parameter sets sent ahead of the IDR slice are included.
		c.dropBefore(c.frameStart)
		c.hasKey = true
	}
	if len(c.pkts) > c.maxPackets || c.bytes > c.maxBytes {
		c.reset()
		c.frameStart = 0
	}
}

// dropBefore releases pkts[:n] and shifts the rest down.
func (c *keyframeCache) dropBefore(n int) {
	for i := 0; i < n; i++ {
		c.bytes -= c.pkts[i].size
		c.pkts[i].release()
	}
	m := copy(c.pkts, c.pkts[n:])
	clear(c.pkts[m:])
	c.pkts = c.pkts[:m]
	c.frameStart -= n
}

// reset releases everything and forgets the keyframe.
func (c *keyframeCache) reset() {
	for _, p := range c.pkts {
		p.release()
	}
	clear(c.pkts)
	c.pkts = c.pkts[:0]
	c.bytes = 0
	c.hasKey = false
	c.frameStart = 0
}

// snapshot returns the cached packets, each with a reference for the caller,
// or nil when no keyframe is cached.
func (c *keyframeCache) snapshot() []*packet {
	if !c.hasKey || len(c.pkts) == 0 {
		return nil
	}
	out := make([]*packet, len(c.pkts))
	for i, p := range c.pkts {
		p.retain(1)
		out[i] = p
	}
	return out
}
