package store

// Team groups people and the hosts they reach.
type Team struct {
	Name          string
	RapidResponse bool
	Hosts         []string // names, "label:K=V" or "*"
	Members       []string
}
