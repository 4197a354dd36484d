package localcluster

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// Processes finds a live process by its environment and reports its
// command line; once it has exited (and been reaped) it is gone.
func TestProcessesFindsAProcessByItsEnvironment(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.Env = append(os.Environ(), "LOCALCLUSTER_TEST_MARK=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	marked := func(_, environ []string) bool { return slices.Contains(environ, "LOCALCLUSTER_TEST_MARK=1") }
	// The kernel lets Start return (close-on-exec closed Go's exec pipe)
	// before it has laid out the new image's argv and environment, so
	// /proc/<pid>/environ can read empty for a moment: poll, with a deadline.
	var got map[int]string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = Processes(marked); got[cmd.Process.Pid] == "sleep 30" {
			break
		}
	}
	if len(got) != 1 || got[cmd.Process.Pid] != "sleep 30" {
		t.Errorf("Processes = %v, want only %d: sleep 30", got, cmd.Process.Pid)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if got := Processes(marked); len(got) != 0 {
		t.Errorf("after the process exited: %v", got)
	}
}
