package testenv

import "testing"

// Every helper here starts goroutines (process reapers, output copiers);
// all of them must be gone once the tests' cleanups ran.
func TestMain(m *testing.M) {
	VerifyTestMain(m)
}
