package recorder

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRoomManifestLifecycle: a room manifest is written when the meeting
// opens (state recording), ends done on Close, and one left open by a dead
// process is marked interrupted by Recover, which leaves it a room
// manifest (not rewritten as a per-file one).
func TestRoomManifestLifecycle(t *testing.T) {
	dir := t.TempDir()
	r, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	done, err := r.OpenRoom("weekly/sync")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(done.Path()) != filepath.Join(dir, "weekly_sync") || !strings.HasSuffix(done.Path(), RoomManifestSuffix) {
		t.Errorf("room manifest at %s, want in %s/weekly_sync", done.Path(), dir)
	}
	m, err := ReadRoomManifest(done.Path())
	if err != nil || m.State != StateRecording || m.Room != "weekly/sync" {
		t.Fatalf("open room manifest: %+v %v", m, err)
	}
	done.Close()
	if m, err = ReadRoomManifest(done.Path()); err != nil || m.State != StateDone || m.End == nil {
		t.Fatalf("closed room manifest: %+v %v", m, err)
	}
	if _, err := ReadManifest(done.Path()); err != nil {
		t.Fatal(err)
	}

	crashed, err := r.OpenRoom("other")
	if err != nil {
		t.Fatal(err)
	}
	changed, err := Recover(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || changed[0] != crashed.Path() {
		t.Errorf("Recover changed %v, want only %s", changed, crashed.Path())
	}
	if m, err = ReadRoomManifest(crashed.Path()); err != nil || m.State != StateInterrupted || m.End == nil {
		t.Errorf("recovered room manifest: %+v %v", m, err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "*", ".*.tmp")); len(leftovers) != 0 {
		t.Errorf("spare files left: %v", leftovers)
	}
}
