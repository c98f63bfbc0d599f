package store

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound = errors.New("store: not found")
	ErrConflict = errors.New("store: conflict")
)

// ErrEnrolled is the answer to a token made or spent for a host whose
// agent is enrolled (a key is bound to it): only ReenrollHost replaces an
// enrolled agent. errors.Is(ErrEnrolled, ErrConflict) holds.
var ErrEnrolled = fmt.Errorf("%w: the host's agent is enrolled", ErrConflict)
