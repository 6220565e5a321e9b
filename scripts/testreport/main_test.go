package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

func ev(action, test, output string) string {
	return fmt.Sprintf(`{"Action":%q,"Package":"ex/p","Test":%q,"Output":%q}`, action, test, output)
}

func runReport(t *testing.T, lines ...string) (*report, string) {
	t.Helper()
	var out bytes.Buffer
	r := newReport(&out)
	if err := r.read(strings.NewReader(strings.Join(lines, "\n") + "\n")); err != nil {
		t.Fatal(err)
	}
	r.finish()
	return r, out.String()
}

func TestCountsAndFailureOutput(t *testing.T) {
	r, out := runReport(t,
		ev("start", "", ""),
		ev("run", "TestOK", ""),
		ev("output", "TestOK", "=== RUN   TestOK\n"),
		ev("output", "TestOK", "    x_test.go:1: quiet\n"),
		ev("pass", "TestOK", ""),
		ev("run", "TestBad", ""),
		ev("output", "TestBad", "    x_test.go:2: parent says\n"),
		ev("run", "TestBad/sub", ""),
		ev("output", "TestBad/sub", "    x_test.go:3: sub broke\n"),
		ev("output", "TestBad/sub", "--- FAIL: TestBad/sub (0.00s)\n"),
		ev("fail", "TestBad/sub", ""),
		ev("output", "TestBad", "--- FAIL: TestBad (0.00s)\n"),
		ev("fail", "TestBad", ""),
		ev("run", "TestSkip", ""),
		ev("skip", "TestSkip", ""),
		ev("output", "", "FAIL\tex/p\t0.1s\n"),
		ev("fail", "", ""),
	)
	if r.passed != 1 || r.failed != 2 || r.skipped != 1 || r.ok() {
		t.Fatalf("counts %d/%d/%d ok=%v", r.passed, r.failed, r.skipped, r.ok())
	}
	if strings.Contains(out, "quiet") || strings.Contains(out, "=== RUN") {
		t.Fatalf("passing test output or progress lines printed:\n%s", out)
	}
	// The parent's own line comes before its subtest's, as in arrival.
	i, j := strings.Index(out, "parent says"), strings.Index(out, "sub broke")
	if i < 0 || j < i {
		t.Fatalf("failing output missing or out of order:\n%s", out)
	}
	if !strings.HasSuffix(out, "go test: 1 passed, 2 failed, 1 skipped\n") {
		t.Fatalf("closing line wrong:\n%s", out)
	}
}

func TestUnfinishedTestsFailWithTheirOutput(t *testing.T) {
	r, out := runReport(t,
		ev("run", "TestHang", ""),
		ev("output", "TestHang", "panic: test timed out after 1s\n"),
		ev("output", "", "FAIL\tex/p\t1.0s\n"),
		ev("fail", "", ""),
	)
	if r.failed != 1 || r.ok() {
		t.Fatalf("a test killed by a timeout counted as %d failed, ok=%v", r.failed, r.ok())
	}
	if !strings.Contains(out, "panic: test timed out") || !strings.Contains(out, "TestHang (did not finish)") {
		t.Fatalf("timeout not reported:\n%s", out)
	}
}

func TestBuildFailureAndForeignLines(t *testing.T) {
	r, out := runReport(t,
		`go: downloading example.com/x v1.0.0`,
		`{"ImportPath":"ex/p [ex/p.test]","Action":"build-output","Output":"p/x.go:1:1: syntax error\n"}`,
		`{"ImportPath":"ex/p [ex/p.test]","Action":"build-fail"}`,
		`{"Action":"fail","Package":"ex/p","FailedBuild":"ex/p [ex/p.test]"}`,
		`{"Action":"output","Package":"ex/q","Output":"ok  \tex/q\t0.1s\n"}`,
		`{"Action":"pass","Package":"ex/q"}`,
	)
	if r.ok() || r.failed != 1 {
		t.Fatalf("a build failure: ok=%v failed=%d, want one failure", r.ok(), r.failed)
	}
	for _, want := range []string{"go: downloading", "syntax error", "FAILED BUILD ex/p [ex/p.test]", "ok  \tex/q"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestLeakAfterPassingTests(t *testing.T) {
	r, out := runReport(t,
		ev("run", "TestA", ""), ev("pass", "TestA", ""),
		ev("output", "", "goleak: Errors on successful test run: found unexpected goroutines\n"),
		ev("fail", "", ""),
	)
	if r.failed != 1 || r.passed != 1 || !strings.Contains(out, "ex/p (package failed outside any test)") {
		t.Fatalf("leak check failure: passed=%d failed=%d\n%s", r.passed, r.failed, out)
	}
}

func TestAllGreen(t *testing.T) {
	r, _ := runReport(t, ev("run", "TestA", ""), ev("pass", "TestA", ""), ev("pass", "", ""))
	if !r.ok() || r.passed != 1 {
		t.Fatalf("green run: ok=%v passed=%d", r.ok(), r.passed)
	}
}

// A go test -json stream becomes go test's usual quiet output plus counts.
func Example() {
	r := newReport(os.Stdout)
	_ = r.read(strings.NewReader(`{"Action":"run","Package":"ex/p","Test":"TestA"}
{"Action":"output","Package":"ex/p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"pass","Package":"ex/p","Test":"TestA"}
{"Action":"output","Package":"ex/p","Output":"ok  \tex/p\t0.1s\n"}
{"Action":"pass","Package":"ex/p"}
`))
	r.finish()
	// Output:
	// ok  	ex/p	0.1s
	//
	// go test: 1 passed, 0 failed, 0 skipped
}

func TestFailedTestDigest(t *testing.T) {
	lines := []string{ev("run", "TestBad", "")}
	for i := range 30 {
		lines = append(lines, ev("output", "TestBad", fmt.Sprintf("    server.go:9: log line %d\n", i)))
	}
	lines = append(lines,
		ev("output", "TestBad", "    x_test.go:5: the reason\n"),
		ev("output", "TestBad", "    server.go:9: a late log line\n"),
		ev("output", "TestBad", "--- FAIL: TestBad (1.00s)\n"),
		ev("fail", "TestBad", ""),
	)
	_, out := runReport(t, lines...)
	_, closing, ok := strings.Cut(out, "FAILED       ex/p.TestBad\n")
	if !ok {
		t.Fatalf("no FAILED line:\n%s", out)
	}
	want := "             | x_test.go:5: the reason\n             | --- FAIL: TestBad (1.00s)\ngo test:"
	if !strings.HasPrefix(closing, want) {
		t.Fatalf("digest under the FAILED line is\n%s\nwant\n%s", closing, want)
	}
}
