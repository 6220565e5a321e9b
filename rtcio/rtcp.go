package rtcio

import (
	"fmt"

	"github.com/pion/rtcp"
)

func unmarshalRTCP(b []byte) ([]rtcp.Packet, error) {
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("rtcio: rtcp: %w", err)
	}
	return pkts, nil
}
