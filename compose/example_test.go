package compose_test

import (
	"fmt"

	"github.com/rtcio-gateway/rtcio-gateway/compose"
)

// Three people on a 1280x720 canvas share a 2x2 grid.
func ExampleGrid() {
	for _, r := range compose.Grid(3, 1280, 720) {
		fmt.Printf("%dx%d at %d,%d\n", r.W, r.H, r.X, r.Y)
	}
	// Output:
	// 640x360 at 0,0
	// 640x360 at 640,0
	// 640x360 at 0,360
}
