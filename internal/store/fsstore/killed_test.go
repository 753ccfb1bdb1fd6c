package fsstore_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/store/fsstore"
)

// writerEnv, set to a store root, makes the test binary a writer process
// (TestMain): it opens the store, starts a Put whose body never ends,
// prints "writing" once part of it is in a temp file, and waits there
// until it is killed.
const writerEnv = "FSSTORE_TEST_WRITER"

func TestMain(m *testing.M) {
	if root := os.Getenv(writerEnv); root != "" {
		os.Exit(writer(root))
	}
	os.Exit(m.Run())
}

func writer(root string) int {
	s, err := fsstore.New(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("partial body")) //nolint:errcheck // read by the Put below
		// The Put has read the first chunk: it is in the temp file.
		fmt.Println("writing")
		select {} // never finishes the body
	}()
	_, err = s.Put(context.Background(), "sites/x/blob", pr, -1, store.PutOptions{})
	fmt.Fprintln(os.Stderr, "put returned:", err)
	return 1
}

// startWriter runs a writer process on root and returns it once its temp
// file exists.
func startWriter(t *testing.T, root string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), writerEnv+"="+root)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck // may be dead already
		cmd.Wait()         //nolint:errcheck // killed
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "writing" {
		t.Fatalf("writer said %q, %v", line, err)
	}
	return cmd
}

// tempFiles lists the files under root/.tmp, at any depth.
func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join(root, ".tmp"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".lock") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestKilledWritersTempRemoved: the temp file of a writer process killed
// mid-Put is removed as soon as the next Store opens on the folder; the
// one of a writer still running is not, however young or old.
func TestKilledWritersTempRemoved(t *testing.T) {
	root := t.TempDir()
	killed := startWriter(t, root)
	leftover := tempFiles(t, root)
	live := startWriter(t, root)
	var liveFiles []string
	for _, f := range tempFiles(t, root) {
		if !strings.Contains(strings.Join(leftover, "\n"), f) {
			liveFiles = append(liveFiles, f)
		}
	}
	if len(leftover) != 1 || len(liveFiles) != 1 {
		t.Fatalf("temp files: %q of the first writer, %q of the second; want one each", leftover, liveFiles)
	}
	if err := killed.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed.Wait() //nolint:errcheck // killed

	s := newStore(t, root) // a restart
	if _, err := os.Stat(leftover[0]); !os.IsNotExist(err) {
		t.Errorf("the killed writer's temp file survived New: %v", err)
	}
	if _, err := os.Stat(liveFiles[0]); err != nil {
		t.Errorf("the live writer's temp file was removed: %v", err)
	}
	if live.ProcessState != nil {
		t.Fatal("the live writer exited")
	}
	// This Store's own writes still work, and Close removes its folder.
	if _, err := put(t, s, "a", "body", store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tempFiles(t, root); len(got) != 1 || got[0] != liveFiles[0] {
		t.Errorf("after Close, temp files %q; want only the live writer's", got)
	}
}
