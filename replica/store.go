package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/slum-fleet/slum"
)

// Errors of the conditional operations, for errors.Is.
var (
	// ErrNotExist: the object is absent.
	ErrNotExist = errors.New("replica store: no such object")
	// ErrChanged: the object is not in the state the write was
	// conditional on (it exists, for a create; its ETag differs or it is
	// gone, for a replace).
	ErrChanged = errors.New("replica store: the object changed")
)

// Object is a stored object's body and ETag.
type Object struct {
	Body []byte
	ETag string
}

// Store is the conditional object access the lease needs. Keys are relative
// to a Location's bucket.
type Store interface {
	// Get reads an object; ErrNotExist when it is absent.
	Get(ctx context.Context, key string) (Object, error)
	// Create writes an object only if it is absent (If-None-Match: *);
	// ErrChanged when it exists. It returns the new ETag.
	Create(ctx context.Context, key string, body []byte) (string, error)
	// Replace writes an object only if its ETag is etag (If-Match);
	// ErrChanged otherwise (also when it is gone). It returns the new ETag.
	Replace(ctx context.Context, key string, body []byte, etag string) (string, error)
}

// Credentials are an S3 access key pair. String never shows the secret.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

func (c Credentials) String() string { return "access key " + c.AccessKeyID + " (secret not shown)" }

// GoString keeps %#v from printing the secret too.
func (c Credentials) GoString() string { return c.String() }

// CredentialsFromEnv reads the credentials as Litestream does:
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else LITESTREAM_ACCESS_KEY_ID
// and LITESTREAM_SECRET_ACCESS_KEY; AWS_SESSION_TOKEN when set.
func CredentialsFromEnv(lookup func(string) (string, bool)) (Credentials, error) {
	get := func(names ...string) string {
		for _, n := range names {
			if v, ok := lookup(n); ok && v != "" {
				return v
			}
		}
		return ""
	}
	c := Credentials{
		AccessKeyID:     get("AWS_ACCESS_KEY_ID", "LITESTREAM_ACCESS_KEY_ID"),
		SecretAccessKey: get("AWS_SECRET_ACCESS_KEY", "LITESTREAM_SECRET_ACCESS_KEY"),
		SessionToken:    get("AWS_SESSION_TOKEN"),
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return Credentials{}, fmt.Errorf("%w: no replica store credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment", slum.ErrInvalid)
	}
	return c, nil
}

// S3 is a Store on an S3-compatible server that honours conditional
// writes (AWS S3, SeaweedFS, MinIO). Requests are never retried: a retried
// conditional write whose first attempt landed would fail against itself,
// and the lease's callers decide what to do after a failure.
type S3 struct {
	client *minio.Client
	bucket string
}

// OpenS3 returns a Store for loc's bucket. regionEnv is AWS_REGION (or "").
func OpenS3(loc Location, creds Credentials, regionEnv string) (*S3, error) {
	region := loc.Region
	if region == "" {
		region = regionEnv
	}
	if region == "" {
		region = DefaultRegion
	}
	host, secure, lookup := "s3.amazonaws.com", true, minio.BucketLookupAuto
	if loc.Endpoint != "" {
		secure = strings.HasPrefix(loc.Endpoint, "https://")
		host = strings.TrimPrefix(strings.TrimPrefix(loc.Endpoint, "https://"), "http://")
		lookup = minio.BucketLookupPath // as Litestream does for a custom endpoint
	}
	tr := &http.Transport{
		Proxy:                 nil, // the store is reached directly, as Litestream reaches it
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		ForceAttemptHTTP2:     false,
	}
	c, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken),
		Secure:       secure,
		Region:       region,
		BucketLookup: lookup,
		Transport:    tr,
		MaxRetries:   1,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: replica store %s: %v", slum.ErrInvalid, loc.Endpoint, err)
	}
	return &S3{client: c, bucket: loc.Bucket}, nil
}

var _ Store = (*S3)(nil)

func (s *S3) Get(ctx context.Context, key string) (Object, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return Object{}, s.wrap("read", key, err)
	}
	defer obj.Close()
	body, err := io.ReadAll(io.LimitReader(obj, 1<<20))
	if err != nil {
		return Object{}, s.wrap("read", key, err)
	}
	st, err := obj.Stat()
	if err != nil {
		return Object{}, s.wrap("read", key, err)
	}
	return Object{Body: body, ETag: st.ETag}, nil
}

func (s *S3) Create(ctx context.Context, key string, body []byte) (string, error) {
	opts := minio.PutObjectOptions{ContentType: "application/json"}
	opts.SetMatchETagExcept("*")
	return s.put(ctx, key, body, opts)
}

func (s *S3) Replace(ctx context.Context, key string, body []byte, etag string) (string, error) {
	if etag == "" {
		return "", fmt.Errorf("%w: replace %s without an ETag", slum.ErrInvalid, key)
	}
	opts := minio.PutObjectOptions{ContentType: "application/json"}
	opts.SetMatchETag(etag)
	return s.put(ctx, key, body, opts)
}

func (s *S3) put(ctx context.Context, key string, body []byte, opts minio.PutObjectOptions) (string, error) {
	info, err := s.client.PutObject(ctx, s.bucket, key, bytes.NewReader(body), int64(len(body)), opts)
	if err != nil {
		return "", s.wrap("write", key, err)
	}
	return info.ETag, nil
}

// wrap turns a minio error into ErrNotExist or ErrChanged where it is one;
// other errors (unreachable, denied) keep their text, which never holds
// the credentials.
func (s *S3) wrap(op, key string, err error) error {
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.StatusCode == http.StatusPreconditionFailed || resp.Code == "PreconditionFailed":
		return fmt.Errorf("%w: %s s3://%s/%s", ErrChanged, op, s.bucket, key)
	case op == "write" && resp.Code == "NoSuchKey":
		// a conditional replace of an object that is gone
		return fmt.Errorf("%w: %s s3://%s/%s: it is gone", ErrChanged, op, s.bucket, key)
	case op == "read" && resp.StatusCode == http.StatusNotFound:
		// a missing bucket reads as an absent lease too: stores that make
		// buckets on the first write (SeaweedFS) then make it; others
		// refuse the write with NoSuchBucket, which the guard shows
		return fmt.Errorf("%w: s3://%s/%s", ErrNotExist, s.bucket, key)
	}
	return fmt.Errorf("replica store: %s s3://%s/%s: %w", op, s.bucket, key, err)
}
