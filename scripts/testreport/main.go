// Command testreport reads `go test -json` on stdin and prints what a plain
// `go test` would (package result lines, the output of failing tests, build
// errors), then one closing count line. scripts/test.sh runs the tests with
// -json through it so that the project's summary can state exact test
// counts while the log stays as readable as go test's own.
//
// Usage: go test -json ./... 2>&1 | testreport [-counts FILE]
//
// It exits 1 when any test, package or build failed, 0 otherwise. With
// -counts it also writes "passed failed skipped" to FILE.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	countsFile := flag.String("counts", "", "write \"passed failed skipped\" to this file")
	flag.Parse()
	r := newReport(os.Stdout)
	if err := r.read(os.Stdin); err != nil {
		fmt.Fprintf(os.Stderr, "testreport: %v\n", err)
		os.Exit(2)
	}
	r.finish()
	if *countsFile != "" {
		data := fmt.Sprintf("%d %d %d\n", r.passed, r.failed, r.skipped)
		if err := os.WriteFile(*countsFile, []byte(data), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "testreport: %v\n", err)
			os.Exit(2)
		}
	}
	if !r.ok() {
		os.Exit(1)
	}
}

// event is one line of `go test -json` (cmd/test2json), plus the build
// events the go command interleaves since Go 1.24.
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	ImportPath  string
	FailedBuild string
}

type testKey struct{ pkg, test string }

type report struct {
	out io.Writer

	// Output of running top-level tests (subtests included, in arrival
	// order); printed only if the test fails, like go test without -v.
	pending map[testKey][]string
	tops    map[string][]string // pkg -> top-level tests in start order
	running map[testKey]bool    // every test and subtest not finished yet

	passed, failed, skipped int
	failedTests             []string
	// digests: per failed test (pkg.Test), what the test's own code said
	// (its _test.go lines), printed again under the closing FAILED list:
	// a failure's reason is otherwise buried in pages of server logs.
	digests      map[string][]string
	failedIn     map[string]int // pkg -> failed tests
	failedPkgs   map[string]bool
	failedBuilds map[string]bool
}

func newReport(out io.Writer) *report {
	return &report{
		out:          out,
		pending:      make(map[testKey][]string),
		tops:         make(map[string][]string),
		running:      make(map[testKey]bool),
		failedIn:     make(map[string]int),
		digests:      make(map[string][]string),
		failedPkgs:   make(map[string]bool),
		failedBuilds: make(map[string]bool),
	}
}

func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			// Not an event: a go command message such as a module error.
			fmt.Fprintf(r.out, "%s\n", line)
			continue
		}
		r.handle(ev)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading go test output: %w", err)
	}
	return nil
}

// noise are the progress lines -json implies and go test hides.
var noise = []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"}

func (r *report) handle(ev event) {
	switch ev.Action {
	case "build-output":
		fmt.Fprint(r.out, ev.Output)
		return
	case "build-fail":
		r.failedBuilds[ev.ImportPath] = true
		return
	}
	if ev.Test == "" {
		switch ev.Action {
		case "output":
			fmt.Fprint(r.out, ev.Output)
		case "fail":
			r.failedPkgs[ev.Package] = true
			if ev.FailedBuild != "" {
				r.failedBuilds[ev.FailedBuild] = true
			}
			r.flushUnfinished(ev.Package)
			if r.failedIn[ev.Package] == 0 {
				// A build error, a failing TestMain or a leak check after
				// the tests: no test to blame, but still one failure.
				r.fail(ev.Package, "(package failed outside any test)")
			}
		}
		return
	}
	top, _, _ := strings.Cut(ev.Test, "/")
	isTop := top == ev.Test
	k, tk := testKey{ev.Package, ev.Test}, testKey{ev.Package, top}
	switch ev.Action {
	case "run":
		r.running[k] = true
		if isTop {
			r.tops[ev.Package] = append(r.tops[ev.Package], top)
			r.pending[tk] = nil
		}
	case "output":
		for _, n := range noise {
			if strings.HasPrefix(ev.Output, n) {
				return
			}
		}
		r.pending[tk] = append(r.pending[tk], ev.Output)
	case "pass", "skip":
		if ev.Action == "pass" {
			r.passed++
		} else {
			r.skipped++
		}
		delete(r.running, k)
		if isTop {
			delete(r.pending, tk)
		}
	case "fail":
		r.fail(ev.Package, ev.Test)
		delete(r.running, k)
		if isTop {
			r.print(r.pending[tk])
			r.digests[ev.Package+"."+ev.Test] = digest(r.pending[tk])
			delete(r.pending, tk)
		}
	}
}

// digestLines bounds a failed test's digest: the last lines are kept, as
// a test's failure is usually what it said last.
const digestLines = 20

// digest keeps the lines a test's own code printed (t.Log, t.Error and
// t.Fatal name a _test.go file), its --- FAIL lines and a panic's first line.
func digest(lines []string) []string {
	var keep []string
	for _, l := range lines {
		t := strings.TrimLeft(l, " \t")
		file, _, found := strings.Cut(t, ": ")
		own := found && strings.Contains(file, "_test.go:")
		if own || strings.HasPrefix(t, "--- FAIL") || strings.HasPrefix(t, "panic:") {
			keep = append(keep, strings.TrimRight(l, "\n"))
		}
	}
	if len(keep) > digestLines {
		keep = keep[len(keep)-digestLines:]
	}
	return keep
}

func (r *report) fail(pkg, what string) {
	r.failed++
	r.failedIn[pkg]++
	sep := "."
	if strings.HasPrefix(what, "(") {
		sep = " "
	}
	r.failedTests = append(r.failedTests, pkg+sep+what)
}

func (r *report) print(lines []string) {
	for _, l := range lines {
		fmt.Fprint(r.out, l)
	}
}

// flushUnfinished counts as failed the tests of pkg that never finished
// and prints their output: a panic or a timeout kills the test binary
// mid-test, and that output is the only clue.
func (r *report) flushUnfinished(pkg string) {
	var unfinished []string
	for k := range r.running {
		if k.pkg == pkg {
			unfinished = append(unfinished, k.test)
			delete(r.running, k)
		}
	}
	sort.Strings(unfinished)
	for _, test := range unfinished {
		r.fail(pkg, test+" (did not finish)")
	}
	for _, top := range r.tops[pkg] {
		tk := testKey{pkg, top}
		if lines, ok := r.pending[tk]; ok {
			r.print(lines)
			delete(r.pending, tk)
		}
	}
	delete(r.tops, pkg)
}

func (r *report) ok() bool {
	return r.failed == 0 && len(r.failedPkgs) == 0 && len(r.failedBuilds) == 0
}

func (r *report) finish() {
	fmt.Fprintln(r.out)
	for _, name := range r.failedTests {
		fmt.Fprintf(r.out, "FAILED       %s\n", name)
		for _, l := range r.digests[name] {
			fmt.Fprintf(r.out, "             | %s\n", strings.TrimSpace(l))
		}
	}
	for _, pkg := range sortedKeys(r.failedBuilds) {
		fmt.Fprintf(r.out, "FAILED BUILD %s\n", pkg)
	}
	for _, pkg := range sortedKeys(r.failedPkgs) {
		fmt.Fprintf(r.out, "FAILED PKG   %s\n", pkg)
	}
	fmt.Fprintf(r.out, "go test: %d passed, %d failed, %d skipped\n", r.passed, r.failed, r.skipped)
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
