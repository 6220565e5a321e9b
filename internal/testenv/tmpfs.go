package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// MountTmpfs mounts a tmpfs of size (e.g. "64k") on a fresh directory, to
// fill a disk for real, and unmounts it when the test ends. Without root or
// the right to mount, the test is skipped.
func MountTmpfs(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (no CAP_SYS_ADMIN?): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// Freezable is a small ext4 file system on a loop device that the test can
// freeze (fsfreeze): while frozen, every write to it blocks, as on a disk
// that stalls.
type Freezable struct {
	// Dir is where it is mounted.
	Dir    string
	frozen bool
}

// MountFreezable makes a 64 MiB ext4 image, mounts it and removes it when
// the test ends (thawing it first). Without root, loop devices, mkfs.ext4
// or fsfreeze, the test is skipped.
func MountFreezable(t testing.TB) *Freezable {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a loop device needs root")
	}
	for _, bin := range []string{"mkfs.ext4", "fsfreeze", "mount"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is missing (e2fsprogs, util-linux)", bin)
		}
	}
	base := t.TempDir()
	img := base + "/disk.img"
	f := &Freezable{Dir: base + "/mnt"}
	if err := os.Mkdir(f.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"truncate", "-s", "64M", img},
		{"mkfs.ext4", "-q", "-F", img},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Skipf("%v: %v %s", args, err, out)
		}
	}
	if out, err := exec.Command("mount", "-o", "loop", img, f.Dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a loop device: %v %s", err, out)
	}
	t.Cleanup(func() {
		f.Thaw(t)
		if out, err := exec.Command("umount", f.Dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", f.Dir, err, out)
		}
	})
	return f
}

// Freeze makes every write to the file system block until Thaw.
func (f *Freezable) Freeze(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("fsfreeze", "-f", f.Dir).CombinedOutput(); err != nil {
		t.Fatalf("fsfreeze -f: %v %s", err, out)
	}
	f.frozen = true
}

// Thaw lets blocked writes go on.
func (f *Freezable) Thaw(t testing.TB) {
	t.Helper()
	if !f.frozen {
		return
	}
	if out, err := exec.Command("fsfreeze", "-u", f.Dir).CombinedOutput(); err != nil {
		t.Errorf("fsfreeze -u: %v %s", err, out)
	}
	f.frozen = false
}
