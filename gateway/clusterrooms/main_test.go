package clusterrooms_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// TestMain builds the gateway binary once for every process test, and
// fails the run on a goroutine left running by the in-process tests.
func TestMain(m *testing.M) {
	leakOpts := testenv.LeakOptions()
	dir, err := os.MkdirTemp("", "rtcio-cluster-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if bin, err := testenv.BuildGateway(dir); err != nil {
		fmt.Fprintln(os.Stderr, err) // the process tests fail on their own
	} else {
		gatewayBin = bin
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(leakOpts...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
