package evidence

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// A statement is what rr signs: a first line naming its kind and version,
// then "key value" lines. The published file is the statement followed by
// its armored SSHSIG signature, so a stock shell splits it:
//
//	sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' F > body
//	sed -n '/^-----BEGIN SSH SIGNATURE-----$/,$p' F > body.sig
//	ssh-keygen -Y verify -f allowed_signers -I rr-audit -n NAMESPACE -s body.sig < body
const armorBegin = "-----BEGIN SSH SIGNATURE-----"

type field struct{ key, value string }

// statement renders kind and fields. A value that is empty, starts with a
// quote or space, or holds anything but printable characters is written
// Go-quoted, so every value is one line and reads back exactly.
func statement(kind string, fields []field) []byte {
	var b bytes.Buffer
	b.WriteString(kind + "\n")
	for _, f := range fields {
		b.WriteString(f.key + " " + quoteValue(f.value) + "\n")
	}
	return b.Bytes()
}

func quoteValue(v string) string {
	if v == "" || v[0] == '"' || strings.TrimSpace(v) != v {
		return strconv.Quote(v)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) || r > unicode.MaxASCII && unicode.IsSpace(r) {
			return strconv.Quote(v)
		}
	}
	return v
}

// parseStatement reads what statement wrote; it refuses another kind,
// unknown layout and repeated keys.
func parseStatement(kind string, b []byte) (map[string]string, error) {
	lines := strings.Split(string(b), "\n")
	if len(lines) < 2 || lines[len(lines)-1] != "" {
		return nil, errors.New("not a statement: it must end with a newline")
	}
	if lines[0] != kind {
		return nil, fmt.Errorf("not a %q statement (first line %q)", kind, lines[0])
	}
	out := map[string]string{}
	for i, l := range lines[1 : len(lines)-1] {
		k, v, ok := strings.Cut(l, " ")
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: want \"key value\"", i+2)
		}
		if strings.HasPrefix(v, `"`) {
			u, err := strconv.Unquote(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", i+2, err)
			}
			v = u
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("line %d: %s given twice", i+2, k)
		}
		out[k] = v
	}
	return out, nil
}

// splitSigned separates a published file into its statement and its
// armored signature.
func splitSigned(file []byte) (body, sig []byte, err error) {
	i := bytes.Index(file, []byte("\n"+armorBegin+"\n"))
	if i < 0 {
		return nil, nil, errors.New("no SSH signature in the file")
	}
	return file[:i+1], file[i+1:], nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseStamp(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
