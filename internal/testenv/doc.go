// Package testenv is the shared test harness of rtcio-gateway: it runs the
// real peers our code must interoperate with, so that tests in any package
// exercise real socket.io clients, a real reference rtc.io server and a real
// Chromium instead of Go stand-ins.
//
// The JavaScript side lives in test/node (installed by scripts/test.sh with
// npm ci). Each helper here spawns one Node process speaking JSON lines on
// stdin/stdout, and every helper is torn down by t.Cleanup: processes are
// killed and waited for, and no goroutine survives the test.
//
//   - StartNodeClients: many socket.io-client 4.8 instances in one process,
//     with clean disconnects, abrupt transport drops and an event mailbox.
//   - StartRefServer: the reference rtc.io signaling server (socket.io 4.8).
//   - StartBrowser: headless Debian Chromium with fake media devices;
//     StartBrowserWith runs it inside a network namespace, with extra flags.
//   - StartRedis: a throwaway redis-server on a loopback port.
//   - NewShaped: a child network namespace behind a veth pair whose
//     bandwidth (tc tbf) and random loss (nftables) the test sets.
//
// Missing prerequisites skip a test on a developer machine but fail it when
// the CI environment variable is "true".
package testenv
