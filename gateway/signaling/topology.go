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
//
// A room cascaded over several nodes has more than one gateway participant:
// the origin and its edges (Member.Media names the edge; empty is the
// origin). A client then pairs only with the gateway of its own edge, and
// the origin pairs with each edge exactly as with a client (the origin
// offers; the edge is its rtc.io peer): a star of stars, one peer
// connection per pair, and edges never pair with each other. While rooms
// do not cascade every Media is empty and this is the plain star.
type SFU struct{}

// Name implements Topology.
func (SFU) Name() string { return "sfu" }

// InitOffers implements Topology: a client joining is announced to its
// gateway participant; a gateway participant joining is told of every
// client already there that it serves, and an origin and an edge are
// announced to each other with the origin offering.
func (SFU) InitOffers(existing []Member, newcomer Member) []InitOffer {
	var offers []InitOffer
	for _, m := range existing {
		switch {
		case newcomer.Role == RoleClient && m.Role == RoleGateway && m.Media == newcomer.Media:
			offers = append(offers, InitOffer{To: m.ID, Source: newcomer.ID})
		case newcomer.Role == RoleGateway && m.Role == RoleClient && m.Media == newcomer.Media:
			offers = append(offers, InitOffer{To: newcomer.ID, Source: m.ID})
		case cascadeLink(newcomer, m):
			origin, edge := newcomer, m
			if origin.Media != "" {
				origin, edge = m, newcomer
			}
			offers = append(offers, InitOffer{To: origin.ID, Source: edge.ID})
		}
	}
	return offers
}

// cascadeLink reports whether a and b are an origin gateway and an edge
// gateway of one cascaded room, which pair with each other.
func cascadeLink(a, b Member) bool {
	return a.Role == RoleGateway && b.Role == RoleGateway && (a.Media == "") != (b.Media == "")
}

// Visible implements Topology: the gateway participant is not a person.
func (SFU) Visible(m Member) bool { return m.Role != RoleGateway }

// MayRelay implements Topology: signaling runs only between a client and
// the gateway participant that serves it, and between an origin and an
// edge gateway.
func (SFU) MayRelay(from, to Member) bool {
	if from.Role == RoleGateway && to.Role == RoleGateway {
		return cascadeLink(from, to)
	}
	return (from.Role == RoleGateway || to.Role == RoleGateway) && from.Media == to.Media
}
