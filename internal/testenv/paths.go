package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// DefaultChromium is Debian's Chromium, the only browser the project uses.
// CHROMIUM_PATH overrides it on machines that keep it elsewhere.
const DefaultChromium = "/usr/bin/chromium"

// RepoRoot returns the directory holding the module's go.mod, found by
// walking up from the working directory. go test runs each package's tests
// in that package's folder, so this works from any package.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("repo root: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && isOurModule(data) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repo root: no go.mod of github.com/rtcio-gateway/rtcio-gateway above the working directory")
		}
		dir = parent
	}
}

// isOurModule guards against a nested or unrelated go.mod (a fixture, a
// vendored tool) being taken for the repository root.
func isOurModule(gomod []byte) bool {
	for _, line := range strings.Split(string(gomod), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 2 && fields[0] == "module" {
			return fields[1] == "github.com/rtcio-gateway/rtcio-gateway"
		}
	}
	return false
}

// NodeDir returns test/node, where the JavaScript drivers and their
// node_modules live.
func NodeDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "test", "node"), nil
}

// NodeScript returns the absolute path of a driver script in test/node.
func NodeScript(name string) (string, error) {
	dir, err := NodeDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("node script %s: %w", name, err)
	}
	return path, nil
}

// ChromiumPath returns the Chromium binary tests launch.
func ChromiumPath() string {
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		return p
	}
	return DefaultChromium
}

// InCI reports whether the tests run under CI, where a missing prerequisite
// is a broken machine, not a reason to skip.
func InCI() bool {
	return os.Getenv("CI") == "true"
}

// nodeProblem returns why the Node drivers cannot run, or "" if they can.
func nodeProblem() string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node is not installed (scripts/test.sh installs it)"
	}
	dir, err := NodeDir()
	if err != nil {
		return err.Error()
	}
	for _, mod := range []string{"socket.io", "socket.io-client"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", mod, "package.json")); err != nil {
			return fmt.Sprintf("%s is missing from %s/node_modules (run npm ci there, or scripts/test.sh)", mod, dir)
		}
	}
	return ""
}

// browserProblem returns why the Chromium driver cannot run, or "".
func browserProblem() string {
	if p := nodeProblem(); p != "" {
		return p
	}
	if _, err := os.Stat(ChromiumPath()); err != nil {
		return fmt.Sprintf("chromium not found at %s (apt-get install chromium)", ChromiumPath())
	}
	dir, err := NodeDir()
	if err != nil {
		return err.Error()
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err != nil {
		return "playwright-core is missing from test/node/node_modules (run npm ci there)"
	}
	return ""
}

// redisProblem returns why StartRedis cannot run, or "".
func redisProblem() string {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return "redis-server is not installed (apt-get install redis-server)"
	}
	return ""
}

// skipOrFail skips on a developer machine and fails under CI.
func skipOrFail(t testing.TB, problem string) {
	t.Helper()
	if problem == "" {
		return
	}
	if InCI() {
		t.Fatalf("prerequisite missing under CI: %s", problem)
	}
	t.Skipf("prerequisite missing: %s", problem)
}

// SkipIfNoNode skips the test when Node or test/node's modules are missing,
// and fails it under CI.
func SkipIfNoNode(t testing.TB) {
	t.Helper()
	skipOrFail(t, nodeProblem())
}

// SkipIfNoBrowser skips the test when Chromium or playwright-core is
// missing, and fails it under CI.
func SkipIfNoBrowser(t testing.TB) {
	t.Helper()
	skipOrFail(t, browserProblem())
}

// SkipIfNoRedis skips the test when redis-server is missing, and fails it
// under CI.
func SkipIfNoRedis(t testing.TB) {
	t.Helper()
	skipOrFail(t, redisProblem())
}
