// Package docs_test keeps the documentation pointing inside the
// repository: every Markdown link and every *.md file a file mentions must
// exist here, with the section it names, so that a reader who cloned rr
// has everything it cites.
package docs_test

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const root = ".."

// placeholders are .md names that stand for a file the caller chooses.
var placeholders = map[string]bool{"PREFIX.md": true, "RR_LOAD_RESULTS.md": true}

var (
	mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdName = regexp.MustCompile(`[A-Za-z0-9_./-]*[A-Za-z0-9_]\.md(#[A-Za-z0-9_-]+)?\b`)
)

// files lists the repository's text files worth reading, relative to root.
func files(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			switch rel {
			case ".git", "bin", "demo", "testdata":
				return filepath.SkipDir
			}
			if d.Name() == "node_modules" { // npm's, not ours (web/)
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(p) {
		case ".md", ".go", ".sh", ".yaml", ".service":
			out = append(out, rel)
		}
		if d.Name() == "Makefile" {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// slug is GitHub's anchor for a heading: lower case, punctuation dropped,
// spaces as hyphens.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors lists the anchors of a Markdown file's headings (outside fenced
// blocks), with GitHub's -1, -2 for repeats.
func anchors(t *testing.T, name string) map[string]bool {
	t.Helper()
	if a, ok := anchorCache[name]; ok {
		return a
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen, out, fenced := map[string]int{}, map[string]bool{}, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		h = strings.NewReplacer("`", "", "*", "").Replace(h)
		s := slug(h)
		if n := seen[s]; n > 0 {
			out[s+"-"+string(rune('0'+n))] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	anchorCache[name] = out
	return out
}

// anchorCache holds each Markdown file's anchors once read (tests here
// run one at a time).
var anchorCache = map[string]map[string]bool{}

// inside resolves target against dir and reports the path if it stays
// in the repository.
func inside(dir, target string) (string, bool) {
	p := filepath.Clean(filepath.Join(root, dir, target))
	rel, err := filepath.Rel(root, p)
	return p, err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// check reports what is wrong with a reference to target (a path, maybe
// with #anchor) from file, or "" when it resolves. bases are the
// directories, relative to root, to resolve it against, in order.
func check(t *testing.T, target string, bases ...string) string {
	t.Helper()
	path, anchor, _ := strings.Cut(target, "#")
	var found string
	left := false
	for _, base := range bases {
		p, ok := inside(base, path)
		if !ok {
			left = true
			continue
		}
		if _, err := os.Stat(p); err == nil {
			found = p
			break
		}
	}
	if found == "" && left {
		return "leaves the repository"
	}
	if found == "" {
		return "does not exist"
	}
	if anchor != "" && strings.HasSuffix(found, ".md") && !anchors(t, found)[anchor] {
		return "has no section #" + anchor
	}
	return ""
}

// TestMarkdownLinks: every relative link in a Markdown file names a file
// in the repository and, with #anchor, a heading of it.
func TestMarkdownLinks(t *testing.T) {
	for _, name := range files(t) {
		if filepath.Ext(name) != ".md" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if strings.HasPrefix(target, "#") {
				target = filepath.Base(name) + target
			}
			if why := check(t, target, filepath.Dir(name)); why != "" {
				t.Errorf("%s: link %s %s", name, m[1], why)
			}
		}
	}
}

// TestMentionedDocs: a *.md file mentioned anywhere (code comments, scripts,
// configs, docs) is a file of the repository, found from the repository's
// root, from the mentioning file's folder, or by its name alone.
func TestMentionedDocs(t *testing.T) {
	all := files(t)
	byName := map[string]bool{}
	for _, name := range all {
		byName[filepath.Base(name)] = true
	}
	for _, name := range all {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range mdName.FindAllString(string(b), -1) {
			path, _, _ := strings.Cut(ref, "#")
			if placeholders[path] || (!strings.Contains(path, "/") && byName[path] && !strings.Contains(ref, "#")) {
				continue
			}
			if why := check(t, ref, ".", filepath.Dir(name)); why != "" {
				t.Errorf("%s mentions %s, which %s", name, ref, why)
			}
		}
	}
}

// TestReadmeShort: the README is for people who use rr; the long stories
// live in docs/ and bench/.
func TestReadmeShort(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n >= 300 {
		t.Errorf("README.md has %d lines; keep it under 300 and move the detail to docs/", n)
	}
}
