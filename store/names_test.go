package store

import "testing"

func TestValidLabelAndHostPattern(t *testing.T) {
	for l, want := range map[string]bool{"env=prod": true, "env=": true, "=prod": false, "env": false, "a=b,c=d": false, "": false} {
		if ValidLabel(l) != want {
			t.Errorf("ValidLabel(%q) = %v", l, !want)
		}
	}
	for p, want := range map[string]bool{"web-01": true, "*": true, "label:env=prod": true, "label:oops": false, "label:": false,
		"we b": false, "**": false} {
		if ValidHostPattern(p) != want {
			t.Errorf("ValidHostPattern(%q) = %v", p, !want)
		}
	}
}
