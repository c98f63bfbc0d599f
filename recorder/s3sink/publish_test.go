package s3sink

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Put publishes evidence once: the same bytes again are fine, other bytes
// under the name are refused and the first stay.
func TestPutNeverReplaces(t *testing.T) {
	v := startVersity(t)
	s := newSink(t, v, nil)
	ctx := context.Background()
	name := "checkpoints/0000000000000007.checkpoint"
	if err := s.Put(ctx, name, []byte("first\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, name, []byte("first\n")); err != nil {
		t.Fatalf("the same content again: %v", err)
	}
	if err := s.Put(ctx, name, []byte("other\n")); !errors.Is(err, ErrExists) {
		t.Fatalf("other content: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(v.dir, testBucket, "rec", name))
	if err != nil || string(b) != "first\n" {
		t.Fatalf("object holds %q, %v", b, err)
	}
	if got, err := s.Get(ctx, name, 100); err != nil || string(got) != "first\n" {
		t.Fatalf("get: %q, %v", got, err)
	}
	if _, err := s.Get(ctx, "checkpoints/none", 100); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get a missing object: %v", err)
	}
}

// ObjectLock tells a bucket without object lock (versitygw's POSIX bucket
// made as a folder) from one created with it and a default retention
// (versitygw v1.8.0 supports both), where a published checkpoint then
// cannot be deleted.
func TestObjectLockDetected(t *testing.T) {
	v := startVersity(t)
	ctx := context.Background()
	plain := newSink(t, v, nil)
	if locked, why := plain.ObjectLock(ctx); locked || !strings.Contains(why, testBucket) {
		t.Fatalf("a bucket without object lock: locked %v: %s", locked, why)
	}

	s := newSink(t, v, func(c *Config) { c.Bucket = "locked" })
	if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("locked"), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if locked, _ := s.ObjectLock(ctx); locked {
		t.Fatal("locked without a default retention")
	}
	_, err := s.client.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{Bucket: aws.String("locked"),
		ObjectLockConfiguration: &types.ObjectLockConfiguration{ObjectLockEnabled: types.ObjectLockEnabledEnabled,
			Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{Mode: types.ObjectLockRetentionModeCompliance, Days: aws.Int32(1)}}}})
	if err != nil {
		t.Fatal(err)
	}
	if locked, why := s.ObjectLock(ctx); !locked || !strings.Contains(why, "COMPLIANCE") {
		t.Fatalf("locked %v: %s", locked, why)
	}
	if err := s.Put(ctx, "checkpoints/1.checkpoint", []byte("signed\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("locked"), Key: aws.String("rec/checkpoints/1.checkpoint")}); err == nil {
		t.Fatal("a locked checkpoint was deleted")
	}
}
