package s3sink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Put stores a small object (a signed checkpoint or manifest) as name,
// never over another: when name exists, Put succeeds only if it holds
// exactly data. The server checks the body against its SHA-256.
func (s *Sink) Put(ctx context.Context, name string, data []byte) error {
	sum := sha256.Sum256(data)
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:            aws.String(s.cfg.Bucket),
		Key:               aws.String(s.key(name)),
		Body:              bytes.NewReader(data),
		ContentLength:     aws.Int64(int64(len(data))),
		IfNoneMatch:       aws.String("*"),
		ContentType:       aws.String("text/plain; charset=utf-8"),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		ChecksumSHA256:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	})
	if err == nil {
		return nil
	}
	if !isCode(err, "PreconditionFailed") {
		return fmt.Errorf("s3: put %s: %w", s.key(name), err)
	}
	out, gerr := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.key(name))})
	if gerr != nil {
		return fmt.Errorf("s3: %s exists and cannot be read: %w", s.key(name), gerr)
	}
	defer out.Body.Close()
	old, rerr := io.ReadAll(io.LimitReader(out.Body, int64(len(data))+1))
	if rerr != nil {
		return fmt.Errorf("s3: read %s: %w", s.key(name), rerr)
	}
	if !bytes.Equal(old, data) {
		return fmt.Errorf("%w: %s holds other content: kept", ErrExists, s.key(name))
	}
	return nil
}

// Get reads a small object put with Put (at most limit bytes).
func (s *Sink) Get(ctx context.Context, name string, limit int64) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.key(name))})
	if err != nil {
		if isCode(err, "NoSuchKey", "NotFound") {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, s.key(name))
		}
		return nil, fmt.Errorf("s3: get %s: %w", s.key(name), err)
	}
	defer out.Body.Close()
	return io.ReadAll(io.LimitReader(out.Body, limit))
}

// ObjectLock reports whether the bucket has S3 Object Lock enabled with a
// default retention, so that what Put publishes cannot be deleted or
// replaced until it expires. A server without Object Lock (or a bucket
// created without it) says false, with the reason.
func (s *Sink) ObjectLock(ctx context.Context) (bool, string) {
	out, err := s.client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(s.cfg.Bucket)})
	if err != nil {
		return false, fmt.Sprintf("object lock not available on bucket %s at %s: %v", s.cfg.Bucket, s.endpointName(), err)
	}
	c := out.ObjectLockConfiguration
	if c == nil || c.ObjectLockEnabled != types.ObjectLockEnabledEnabled {
		return false, fmt.Sprintf("object lock is not enabled on bucket %s", s.cfg.Bucket)
	}
	if c.Rule == nil || c.Rule.DefaultRetention == nil {
		return false, fmt.Sprintf("object lock is enabled on bucket %s but it has no default retention", s.cfg.Bucket)
	}
	r := c.Rule.DefaultRetention
	return true, fmt.Sprintf("object lock: %s, %d days %d years by default", r.Mode, aws.ToInt32(r.Days), aws.ToInt32(r.Years))
}
