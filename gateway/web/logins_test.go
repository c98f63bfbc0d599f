package web

import (
	"testing"
	"time"

	"github.com/rr-gateway/rr/auth"
)

// TestTickets: a login holds at most max tickets, each taken once and
// only before it expires.
func TestTickets(t *testing.T) {
	now := time.Unix(1000, 0)
	ls := &logins{idle: time.Minute, max: time.Hour, limit: 10, perPerson: 2, now: func() time.Time { return now },
		all: map[[32]byte]*webLogin{}}
	_, l, ok := ls.add(&auth.Login{Person: auth.Person{Name: "alice"}}, "src")
	if !ok {
		t.Fatal("no login")
	}
	var ids []string
	for range 3 {
		id, ok := l.addTicket(&ticket{host: "h"}, now.Add(ticketTTL), 3)
		if !ok {
			t.Fatal("a ticket within the bound refused")
		}
		ids = append(ids, id)
	}
	if _, ok := l.addTicket(&ticket{host: "h"}, now.Add(ticketTTL), 3); ok {
		t.Fatal("a fourth ticket over a bound of 3")
	}
	if _, ok := l.takeTicket(ids[0], now); !ok {
		t.Fatal("a ticket not taken")
	}
	if _, ok := l.takeTicket(ids[0], now); ok {
		t.Fatal("a ticket taken twice")
	}
	if _, ok := l.takeTicket(ids[1], now.Add(ticketTTL+time.Second)); ok {
		t.Fatal("an expired ticket taken")
	}
	// A person's logins beyond perPerson end the oldest, closing it.
	for range 2 {
		now = now.Add(time.Second)
		ls.add(&auth.Login{Person: auth.Person{Name: "alice"}}, "src")
	}
	select {
	case <-l.ended:
	default:
		t.Fatal("the oldest login outlived logins_per_person")
	}
}
