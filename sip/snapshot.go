package sip

// Records returns every record of table t as an upsert Change, for a bulk
// sync to a standby that starts empty. Order is unspecified.
func (in *Inspector) Records(t Table) []Change {
	in.mu.Lock()
	defer in.mu.Unlock()
	var l []Change
	switch t {
	case TableSession:
		for _, s := range in.sessions {
			l = append(l, Change{Table: TableSession, Op: OpUpsert, Session: s.rec})
		}
	case TableTransaction:
		for _, x := range in.txs {
			l = append(l, Change{Table: TableTransaction, Op: OpUpsert, Transaction: x.rec})
		}
	case TablePinhole:
		for _, p := range in.pins {
			l = append(l, Change{Table: TablePinhole, Op: OpUpsert, Pinhole: *p})
		}
	}
	return l
}

// Reset empties table t, as a standby does before a bulk sync refills it.
func (in *Inspector) Reset(t Table) {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch t {
	case TableSession:
		clear(in.sessions)
	case TableTransaction:
		clear(in.txs)
	case TablePinhole:
		clear(in.pins)
	}
}

// Pinholes returns the pinhole table's records. Order is unspecified.
func (in *Inspector) Pinholes() []PinholeRecord {
	in.mu.Lock()
	defer in.mu.Unlock()
	l := make([]PinholeRecord, 0, len(in.pins))
	for _, p := range in.pins {
		l = append(l, *p)
	}
	return l
}
