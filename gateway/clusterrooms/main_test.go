package clusterrooms_test

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// binary is the rtcio-gateway binary the process tests run, built on first
// use and once per test run.
type binary struct {
	dir  string
	once sync.Once
	path string
	err  error
}

func (b *binary) get(t *testing.T) string {
	t.Helper()
	b.once.Do(func() { b.path, b.err = testenv.BuildGateway(b.dir) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// gatewayBin is shared by the package's process tests.
var gatewayBin binary

// TestMain fails the run on a goroutine left running by the in-process
// tests, and removes the built binary.
func TestMain(m *testing.M) {
	leakOpts := testenv.LeakOptions()
	dir, err := os.MkdirTemp("", "rtcio-cluster-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gatewayBin.dir = dir
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
