package signaling_test

import (
	"fmt"
	"testing"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
)

func client(id, media string) signaling.Member {
	return signaling.Member{ID: id, Role: signaling.RoleClient, Media: media}
}

func gatewayPeer(id, media string) signaling.Member {
	return signaling.Member{ID: id, Role: signaling.RoleGateway, Media: media}
}

// TestSFUPairing: in the plain star (every Media empty) each client pairs
// with the gateway and clients never with each other; in a cascaded room a
// client pairs only with the gateway of its own edge, the origin pairs
// with every edge (the origin offering), and edges never pair with each
// other. MayRelay allows exactly the pairs InitOffers makes.
func TestSFUPairing(t *testing.T) {
	topo := signaling.SFU{}
	o, c1, c2 := gatewayPeer("o", ""), client("c1", ""), client("c2", "")
	e2, d1, d2 := gatewayPeer("e2", "n2"), client("d1", "n2"), client("d2", "n2")
	e3, f1 := gatewayPeer("e3", "n3"), client("f1", "n3")
	o2 := gatewayPeer("o2", "")
	for _, tc := range []struct {
		name     string
		existing []signaling.Member
		newcomer signaling.Member
		want     string
	}{
		{"plain: client joins", []signaling.Member{c1, o}, c2, "[{o c2}]"},
		{"plain: gateway joins", []signaling.Member{c1, c2}, o, "[{o c1} {o c2}]"},
		{"plain: second origin gateway (takeover) pairs with clients only", []signaling.Member{c1, o, c2}, o2, "[{o2 c1} {o2 c2}]"},
		{"cascade: edge client pairs with its edge", []signaling.Member{o, c1, e2, d1, e3}, d2, "[{e2 d2}]"},
		{"cascade: origin client pairs with the origin", []signaling.Member{o, e2, d1, e3}, c2, "[{o c2}]"},
		{"cascade: edge joins, origin offers, edge serves its clients", []signaling.Member{o, c1, e2, d1, f1}, e3, "[{o e3} {e3 f1}]"},
		{"cascade: new origin pairs with origin clients and every edge", []signaling.Member{c1, e2, d1, e3, f1}, o2, "[{o2 c1} {o2 e2} {o2 e3}]"},
	} {
		var got []string
		for _, off := range topo.InitOffers(tc.existing, tc.newcomer) {
			got = append(got, "{"+off.To+" "+off.Source+"}")
			var to, src signaling.Member
			for _, m := range append(tc.existing, tc.newcomer) {
				switch m.ID {
				case off.To:
					to = m
				case off.Source:
					src = m
				}
			}
			if !topo.MayRelay(to, src) || !topo.MayRelay(src, to) {
				t.Errorf("%s: %s and %s are paired but may not signal", tc.name, off.To, off.Source)
			}
		}
		if fmt.Sprint(got) != tc.want && !(len(got) == 0 && tc.want == "[]") {
			t.Errorf("%s: offers %v, want %s", tc.name, got, tc.want)
		}
	}
	for _, pair := range [][2]signaling.Member{{c1, c2}, {d1, d2}, {c1, e2}, {d1, o}, {d1, e3}, {e2, e3}, {o, o2}} {
		for _, p := range [][2]signaling.Member{pair, {pair[1], pair[0]}} {
			if topo.MayRelay(p[0], p[1]) {
				t.Errorf("%s may signal %s", p[0].ID, p[1].ID)
			}
		}
	}
}
