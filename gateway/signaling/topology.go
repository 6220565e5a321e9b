package signaling

// InitOffer tells To to open a peer connection to Source as the polite side.
type InitOffer struct {
	To     string
	Source string
}

// Topology is a room's policy: who negotiates with whom, and who appears in
// presence events. It sees only the room's membership, so it can be decided
// per room and swapped without touching the signaling code.
type Topology interface {
	// Name is the policy's config name ("mesh", "sfu").
	Name() string
	// InitOffers returns the init-offers to send when newcomer joins a room
	// whose members were existing (in join order).
	InitOffers(existing []Member, newcomer Member) []InitOffer
	// Visible reports whether m appears in presence events of the room.
	Visible(m Member) bool
	// MayRelay reports whether a #rtcio:message from one member may reach
	// another (both are members of the room).
	MayRelay(from, to Member) bool
}

// Mesh is rtc.io-server's topology: every existing member is told to offer
// to the newcomer, so the room becomes a full mesh. A gateway participant
// (the recorder of a mesh room) is one more member of that mesh, hidden
// from presence.
type Mesh struct{}

// Name implements Topology.
func (Mesh) Name() string { return "mesh" }

// InitOffers implements Topology.
func (Mesh) InitOffers(existing []Member, newcomer Member) []InitOffer {
	offers := make([]InitOffer, 0, len(existing))
	for _, m := range existing {
		offers = append(offers, InitOffer{To: m.ID, Source: newcomer.ID})
	}
	return offers
}

// Visible implements Topology: everyone but a gateway participant, which is
// not a person.
func (Mesh) Visible(m Member) bool { return m.Role != RoleGateway }

// MayRelay implements Topology.
func (Mesh) MayRelay(Member, Member) bool { return true }

// SFU is the star topology: every client negotiates with the room's gateway
// participant only, which is hidden from presence. Clients never get
// init-offers for each other, so each has exactly one peer connection; the
// gateway is always the polite side that offers first.
type SFU struct{}

// Name implements Topology.
func (SFU) Name() string { return "sfu" }

// InitOffers implements Topology: a client joining is announced to the
// gateway participants; a gateway participant joining is told of every
// client already there.
func (SFU) InitOffers(existing []Member, newcomer Member) []InitOffer {
	var offers []InitOffer
	for _, m := range existing {
		switch {
		case newcomer.Role == RoleClient && m.Role == RoleGateway:
			offers = append(offers, InitOffer{To: m.ID, Source: newcomer.ID})
		case newcomer.Role == RoleGateway && m.Role == RoleClient:
			offers = append(offers, InitOffer{To: newcomer.ID, Source: m.ID})
		}
	}
	return offers
}

// Visible implements Topology: the gateway participant is not a person.
func (SFU) Visible(m Member) bool { return m.Role != RoleGateway }

// MayRelay implements Topology: signaling runs only between a client and
// the gateway participant.
func (SFU) MayRelay(from, to Member) bool {
	return from.Role == RoleGateway || to.Role == RoleGateway
}
