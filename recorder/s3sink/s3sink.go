package s3sink

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Sentinel errors.
var (
	ErrExists   = errors.New("s3sink: object already exists")
	ErrMismatch = errors.New("s3sink: object does not match its checksum")
	ErrNotFound = errors.New("s3sink: no such object")
)

// Config says where recordings go.
type Config struct {
	Endpoint  string // e.g. "http://127.0.0.1:7070"; "" = AWS
	Region    string // required
	Bucket    string // required
	Prefix    string // key prefix, e.g. "recordings/"
	PathStyle bool   // path-style addressing (most self-hosted servers)
	// AccessKeyID and SecretAccessKey: static credentials; both empty:
	// the SDK's default chain (environment, shared files, instance role).
	AccessKeyID     string
	SecretAccessKey string
	// Files at or above MultipartThreshold (64 MiB) go up in parts of
	// PartSize (16 MiB, at least 5 MiB); about four parts are in memory
	// while one does.
	MultipartThreshold int64
	PartSize           int64
	Timeout            time.Duration // per request, 5m
}

// Sink is a bucket (and prefix) holding recordings.
type Sink struct {
	cfg    Config
	client *s3.Client
}

// metaSHA256 is the object metadata key holding the hex SHA-256, for
// people (rr verify -sha256). It is what we claimed, not proof: an object
// is checked against the checksum the server computed (Verify).
const metaSHA256 = "sha256"

// minPartSize is S3's smallest part but the last.
const minPartSize = 5 << 20

// New checks cfg and builds a client; it does not contact the server.
func New(ctx context.Context, cfg Config) (*Sink, error) {
	var errs []error
	if cfg.Region == "" {
		errs = append(errs, errors.New("s3: region is empty"))
	}
	if cfg.Bucket == "" {
		errs = append(errs, errors.New("s3: bucket is empty"))
	}
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		errs = append(errs, errors.New("s3: give both access key id and secret access key, or neither"))
	}
	if cfg.Endpoint != "" && !strings.HasPrefix(cfg.Endpoint, "http://") && !strings.HasPrefix(cfg.Endpoint, "https://") {
		errs = append(errs, fmt.Errorf("s3: endpoint %q: want http:// or https://", cfg.Endpoint))
	}
	if cfg.MultipartThreshold <= 0 {
		cfg.MultipartThreshold = 64 << 20
	}
	if cfg.PartSize <= 0 {
		cfg.PartSize = 16 << 20
	}
	if cfg.PartSize < minPartSize {
		errs = append(errs, fmt.Errorf("s3: part size %d is below S3's minimum of 5 MiB", cfg.PartSize))
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(cfg.Region),
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(cfg.Timeout)),
		awsconfig.WithRetryMaxAttempts(3),
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	client := s3.NewFromConfig(ac, func(o *s3.Options) {
		o.UsePathStyle = cfg.PathStyle
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &Sink{cfg: cfg, client: client}, nil
}

// Location names where an object lives: s3://bucket/prefix+name.
func (s *Sink) Location(name string) string { return "s3://" + s.cfg.Bucket + "/" + s.key(name) }

func (s *Sink) key(name string) string { return s.cfg.Prefix + name }

// Check reaches the bucket: a clear error at start for a wrong endpoint,
// credentials or bucket.
func (s *Sink) Check(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.cfg.Bucket)}); err != nil {
		return fmt.Errorf("s3: bucket %s at %s: %w", s.cfg.Bucket, s.endpointName(), err)
	}
	return nil
}

func (s *Sink) endpointName() string {
	if s.cfg.Endpoint == "" {
		return "AWS"
	}
	return s.cfg.Endpoint
}

// Upload puts the file at path as object name, unless one exists
// (ErrExists: it is never overwritten; Verify says whether it is this
// file), then verifies the object (ErrMismatch). nil means the object is
// there and verified.
func (s *Sink) Upload(ctx context.Context, name, path string, size int64, sha256hex string) error {
	raw, err := decodeSHA256(sha256hex)
	if err != nil {
		return err
	}
	if _, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.key(name))}); err == nil {
		return ErrExists
	} else if !isCode(err, "NotFound", "NoSuchKey") {
		return fmt.Errorf("s3: head %s: %w", s.key(name), err)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	in := &s3.PutObjectInput{
		Bucket:            aws.String(s.cfg.Bucket),
		Key:               aws.String(s.key(name)),
		Body:              f,
		IfNoneMatch:       aws.String("*"),
		Metadata:          map[string]string{metaSHA256: sha256hex},
		ContentType:       aws.String("application/gzip"),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	}
	if size >= s.cfg.MultipartThreshold {
		err = s.uploadParts(ctx, in)
	} else {
		// The server checks the body against the SHA-256 we say it has.
		in.ContentLength = aws.Int64(size)
		in.ChecksumSHA256 = aws.String(base64.StdEncoding.EncodeToString(raw))
		_, err = s.client.PutObject(ctx, in)
	}
	if err != nil {
		switch {
		case isCode(err, "PreconditionFailed"):
			return ErrExists
		case isCode(err, "BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"):
			return fmt.Errorf("%w: %s: %v", ErrMismatch, s.key(name), err)
		}
		return fmt.Errorf("s3: put %s: %w", s.key(name), err)
	}
	return s.Verify(ctx, name, path, size, sha256hex)
}

// uploadParts puts in's file up in parts of PartSize, each with its
// SHA-256, two at a time, and aborts the multipart upload on failure.
// transfermanager copies each part into a buffer of its own, so this holds
// about four parts in memory (TestMultipartUploadMemory); its threshold is
// one part, or it would read a whole MultipartThreshold first.
func (s *Sink) uploadParts(ctx context.Context, in *s3.PutObjectInput) error {
	tm := transfermanager.New(s.client, func(o *transfermanager.Options) {
		o.PartSizeBytes = s.cfg.PartSize
		o.MultipartUploadThreshold = s.cfg.PartSize
		o.Concurrency = 2
		o.ChecksumAlgorithm = tmtypes.ChecksumAlgorithmSha256
	})
	_, err := tm.UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: in.Bucket, Key: in.Key, Body: in.Body,
		IfNoneMatch: in.IfNoneMatch, Metadata: in.Metadata, ContentType: in.ContentType,
		ChecksumAlgorithm: tmtypes.ChecksumAlgorithmSha256})
	return err
}

// Verify checks object name against the file at path, of size bytes and
// SHA-256 sha256hex: its size, and the SHA-256 the server computed (whole,
// or of the parts for a multipart upload, recomputed here from the file).
// It is how Upload checks what it put, and how an object found under the
// name is told to be this file or not; the metadata we wrote with it is
// never taken as proof. nil means the object is this file; ErrMismatch
// that it is another or damaged; ErrNotFound that there is none.
func (s *Sink) Verify(ctx context.Context, name, path string, size int64, sha256hex string) error {
	raw, err := decodeSHA256(sha256hex)
	if err != nil {
		return err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket),
		Key: aws.String(s.key(name)), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		if isCode(err, "NotFound", "NoSuchKey") {
			return fmt.Errorf("%w: %s", ErrNotFound, s.key(name))
		}
		return fmt.Errorf("s3: verify %s: %w", s.key(name), err)
	}
	got := aws.ToString(out.ChecksumSHA256)
	want := base64.StdEncoding.EncodeToString(raw)
	if n, isMultipart := partsOf(got); isMultipart {
		want, err = compositeSHA256(path, size, s.cfg.PartSize, n)
		if err != nil {
			return err
		}
	}
	if aws.ToInt64(out.ContentLength) != size || got != want {
		return fmt.Errorf("%w: %s is %d bytes, checksum %q; the file is %d bytes, checksum %q",
			ErrMismatch, s.key(name), aws.ToInt64(out.ContentLength), got, size, want)
	}
	return nil
}

func decodeSHA256(sha256hex string) ([]byte, error) {
	raw, err := hex.DecodeString(sha256hex)
	if err != nil || len(raw) != sha256.Size {
		return nil, fmt.Errorf("s3: bad sha256 %q", sha256hex)
	}
	return raw, nil
}

// partsOf reads the part count of a composite checksum ("…-3").
func partsOf(sum string) (int, bool) {
	i := strings.LastIndexByte(sum, '-')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(sum[i+1:])
	return n, err == nil && n > 0
}

// compositeSHA256 is S3's checksum of an object uploaded in parts of
// partSize: the SHA-256 of the parts' SHA-256s, then "-N".
func compositeSHA256(path string, size, partSize int64, parts int) (string, error) {
	if (size+partSize-1)/partSize != int64(parts) {
		return "", fmt.Errorf("%w: %d parts reported, %d expected", ErrMismatch, parts, (size+partSize-1)/partSize)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	outer := sha256.New()
	for i := 0; i < parts; i++ {
		h := sha256.New()
		if _, err := io.CopyN(h, f, partSize); err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		outer.Write(h.Sum(nil))
	}
	return base64.StdEncoding.EncodeToString(outer.Sum(nil)) + "-" + strconv.Itoa(parts), nil
}

// Open streams an object.
func (s *Sink) Open(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.key(name))})
	if err != nil {
		if isCode(err, "NotFound", "NoSuchKey") {
			return nil, 0, ErrNotFound
		}
		return nil, 0, fmt.Errorf("s3: get %s: %w", s.key(name), err)
	}
	return out.Body, aws.ToInt64(out.ContentLength), nil
}

// OpenLocation streams the object a Location names, from offset on (a
// ranged GET), so a download never needs a local copy. Locations in
// another bucket are refused.
func (s *Sink) OpenLocation(ctx context.Context, location string, offset int64) (io.ReadCloser, error) {
	rest, ok := strings.CutPrefix(location, "s3://"+s.cfg.Bucket+"/")
	if !ok || rest == "" {
		return nil, fmt.Errorf("s3: %q is not in bucket %s", location, s.cfg.Bucket)
	}
	in := &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(rest)}
	if offset > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		if isCode(err, "NotFound", "NoSuchKey") {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("s3: get %s: %w", rest, err)
	}
	return checkedBody{out.Body}, nil
}

// checkedBody names the SDK's end-of-body checksum failure: the object no
// longer matches the SHA-256 it was stored with (ErrMismatch).
type checkedBody struct{ io.ReadCloser }

func (b checkedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && strings.Contains(err.Error(), "checksum did not match") {
		err = fmt.Errorf("%w: %v", ErrMismatch, err)
	}
	return n, err
}

func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		for _, c := range codes {
			if ae.ErrorCode() == c {
				return true
			}
		}
	}
	return false
}
