// Package s3sink puts closed recordings into an S3-compatible bucket and
// reads them back. It is the only importer of aws-sdk-go-v2.
//
// It never overwrites an object (a conditional put, after a HeadObject,
// since not every server honours the condition), verifies each upload
// against the local file's size and SHA-256 before saying it is done, and
// streams downloads. It owns no local files and deletes nothing: the
// caller removes its spool copy only after Upload returned nil.
package s3sink
