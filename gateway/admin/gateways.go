package admin

import "time"

// gatewayJSON is a gateway sharing the store, as gateways prints it.
type gatewayJSON struct {
	Name      string    `json:"name"`
	Advertise string    `json:"advertise"`
	Renewed   time.Time `json:"renewed"`
	Expires   time.Time `json:"expires"`
	Alive     bool      `json:"alive"`
}

// gateways lists the gateways whose lease is in the store: alive while
// it has not expired. One whose lease a peer found expired is gone from
// the list (it writes a new one when it comes back).
func (c *Console) gateways(x *call) error {
	if _, err := x.parse(x.flags(), 0, 0); err != nil {
		return err
	}
	leases, err := c.cfg.Store.Leases(x.ctx)
	if err != nil {
		return c.storeErr(err)
	}
	now := c.cfg.Now()
	list := []gatewayJSON{}
	for _, l := range leases {
		list = append(list, gatewayJSON{Name: l.Gateway, Advertise: l.Advertise, Renewed: l.Renewed, Expires: l.Expires,
			Alive: !l.Expires.Before(now)})
	}
	if x.json {
		return writeJSON(x.out, list)
	}
	t := newTable(x.out, "NAME", "ADVERTISE", "RENEWED", "EXPIRES", "ALIVE")
	for _, g := range list {
		t.add(g.Name, orDash(g.Advertise), stamp(g.Renewed), stamp(g.Expires), yesNo(g.Alive))
	}
	return t.flush()
}
