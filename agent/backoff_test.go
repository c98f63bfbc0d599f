package agent

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second}
	steps := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, step := range steps {
		step *= time.Millisecond
		d := b.next()
		if d < step/2 || d > step {
			t.Fatalf("delay %d = %v, want within [%v, %v]", i, d, step/2, step)
		}
	}
	b.reset()
	if d := b.next(); d > 100*time.Millisecond {
		t.Fatalf("after reset: %v", d)
	}
}

// TestBackoffStartsOverAfterAGoodRun: a connection that stayed up longer
// than the longest delay (or resetAfter) starts the back-off over; one that
// dropped sooner, or never came up, goes on from where it was.
func TestBackoffStartsOverAfterAGoodRun(t *testing.T) {
	for _, max := range []time.Duration{time.Second, time.Minute} {
		b := backoff{min: 100 * time.Millisecond, max: max}
		for range 12 {
			b.after(0) // failed dials: the step climbs to max
		}
		good := min(max, resetAfter)
		for _, up := range []time.Duration{0, good / 2, good} {
			if d := b.after(up); d < max/2 {
				t.Fatalf("max %v: after a connection up %v: %v, want the back-off to go on (at least %v)", max, up, d, max/2)
			}
		}
		if d := b.after(good + time.Millisecond); d > 100*time.Millisecond {
			t.Fatalf("max %v: after a connection up %v: %v, want the back-off started over", max, good+time.Millisecond, d)
		}
	}
}
