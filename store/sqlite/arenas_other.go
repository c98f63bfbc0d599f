//go:build !cgo || !linux

package sqlite

// mallocArenas is -1: no glibc malloc to count.
func mallocArenas() int { return -1 }
