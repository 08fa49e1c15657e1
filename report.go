package slum

// Report is what the controller observed and decided since its last
// report, written in one fenced transaction. Status rows are the
// controller's own: it upserts them and drops the rows of objects that left
// the desired state.
type Report struct {
	Instances     []InstanceStatus
	DropInstances []InstanceKey
	Servers       []ServerStatus
	DropServers   []string
	Tenants       []TenantStatus
	DropTenants   []string
	Events        []Event
	// Forget removes ledger entries whose copies are confirmed gone.
	Forget []Placement
}

// Empty reports whether the report writes nothing.
func (r *Report) Empty() bool {
	return len(r.Instances)+len(r.DropInstances)+len(r.Servers)+len(r.DropServers)+len(r.Tenants)+
		len(r.DropTenants)+len(r.Events)+len(r.Forget) == 0
}
