package miniotest_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sitehost/sitehost/internal/miniotest"
)

func TestStartStopRestart(t *testing.T) {
	srv := miniotest.Start(t)
	c := srv.Client(t)
	bucket := srv.Bucket(t)
	const key, body = "dir/object.txt", "hello, minio"

	if _, err := c.PutObject(t.Context(), bucket, key, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	checkObject(t, c, bucket, key, body)

	srv.Stop(t)
	// A short deadline: the port is closed, so the call must fail, not hang
	// through minio-go's retries.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := c.StatObject(ctx, bucket, key, minio.StatObjectOptions{}); err == nil {
		t.Fatal("StatObject on a stopped server succeeded")
	}

	srv.Restart(t)
	checkObject(t, c, bucket, key, body)
	if other := srv.Bucket(t); other == bucket {
		t.Errorf("Bucket returned %q twice", bucket)
	}
}

func checkObject(t *testing.T, c *minio.Client, bucket, key, want string) {
	t.Helper()
	obj, err := c.GetObject(t.Context(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	defer obj.Close()
	got, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	if string(got) != want {
		t.Errorf("%s = %q, want %q", key, got, want)
	}
}

func TestBucketNames(t *testing.T) {
	srv := miniotest.Start(t)
	seen := map[string]bool{}
	for range 3 {
		name := srv.Bucket(t)
		if seen[name] || len(name) < 3 || len(name) > 63 || name != strings.ToLower(name) {
			t.Errorf("bucket name %q: want unique, lowercase, 3-63 characters", name)
		}
		seen[name] = true
		ok, err := srv.Client(t).BucketExists(t.Context(), name)
		if err != nil || !ok {
			t.Errorf("BucketExists(%q) = %v, %v; want true", name, ok, err)
		}
	}
}
