package signaling_test

import (
	"testing"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
)

// TestIsGatewayID: only AttachLocal's ids are gateway ids; a network
// client's id, even one that happens to start with "gw-", is not.
func TestIsGatewayID(t *testing.T) {
	srv, err := signaling.New(signaling.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	l := srv.AttachLocal(signaling.RoleGateway)
	defer l.Close()
	if !signaling.IsGatewayID(l.ID()) {
		t.Fatalf("%q is not a gateway id", l.ID())
	}
	for _, id := range []string{"", "gw-", "gw-abcdefghijklmnopq", "gw-XyS-fCRFKX1RHQAAAAAAAAAd", "MLl6OBIAhufjQAAAAAAAAAAf", "gw-00000000-0000-0000-0000-00000000000g", l.ID() + "x"} {
		if signaling.IsGatewayID(id) {
			t.Errorf("%q taken for a gateway id", id)
		}
	}
}
