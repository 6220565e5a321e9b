package recorder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRecoverMarksOnlyUnfinishedManifests(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "room")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Minute).UTC()
	write := func(name, state string) string {
		p := filepath.Join(sub, name+".json")
		m := &Manifest{Version: 1, State: state, File: name + ".webm", Start: start, DurationMs: 1500, PacketsReceived: 10}
		if err := writeJSONAtomic(p, m); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, name+".webm"), make([]byte, 1234), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	done := write("done", StateDone)
	live := write("live", StateRecording)
	if err := makeReserve(live); err != nil { // as a crashed writer leaves it
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "broken.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	doneBefore, _ := os.ReadFile(done)

	changed, err := Recover(dir, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "broken.json") {
		t.Fatalf("Recover should report the broken manifest, got %v", err)
	}
	if len(changed) != 1 || changed[0] != live {
		t.Fatalf("changed %v, want [%s]", changed, live)
	}
	m, err := ReadManifest(live)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != StateInterrupted || m.EndReason != ReasonInterruptedCrash || m.Bytes != 1234 || m.End == nil ||
		m.DurationMs != 1500 || m.PacketsReceived != 10 {
		t.Fatalf("recovered manifest %+v", m)
	}
	if after, _ := os.ReadFile(done); string(after) != string(doneBefore) {
		t.Fatal("a finished manifest was rewritten")
	}
	if tmp, _ := filepath.Glob(filepath.Join(sub, ".*")); len(tmp) != 0 {
		t.Fatalf("leftover temporary files %v", tmp)
	}
}

// TestManifestUsesReserve shows the final manifest is written into space
// the reserve already holds.
func TestManifestUsesReserve(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.json")
	if err := makeReserve(p); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(reservePath(p))
	if err != nil || st.Size() != manifestReserve {
		t.Fatalf("reserve %v %v", st, err)
	}
	if err := writeJSONAtomic(p, &Manifest{Version: 1, State: StateDone, File: "x.webm"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(reservePath(p)); !os.IsNotExist(err) {
		t.Fatalf("reserve still there: %v", err)
	}
	m, err := ReadManifest(p)
	if err != nil || m.State != StateDone {
		t.Fatalf("manifest %+v %v", m, err)
	}
}
