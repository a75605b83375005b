package gtp

// The replication hooks a unit needs to carry the database on its state
// link: the change stream is installed after New (SetOnChange), a bulk sync
// reads every committed context (Snapshot) and the digest check reads the
// digest (DigestLocked), each under the lock that orders the changes, so
// that a snapshot or digest sits at one exact place in the stream.

// SetOnChange replaces Config.OnChange: fn is called with every change of
// a committed context, in order, while the inspector's write lock is held
// (it must not call back into the inspector). nil stops the reports.
func (in *Inspector) SetOnChange(fn func(Change)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.cfg.OnChange = fn
}

// Snapshot calls fn with every committed context's record while holding
// the read lock, which excludes every change: no change is reported
// between the first record and the last.
func (in *Inspector) Snapshot(fn func(Record)) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	for _, c := range in.contexts {
		fn(c.rec)
	}
}

// DigestLocked calls fn with the digest while holding the read lock, so
// that the digest matches the change stream's position at that moment.
func (in *Inspector) DigestLocked(fn func(digest uint64)) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	fn(in.digest)
}

// Reset empties the database of committed contexts (a standby's before a
// bulk sync refills it) without reporting changes. Outstanding requests and
// known GSNs are kept: they are local state, never replicated.
func (in *Inspector) Reset() {
	in.mu.Lock()
	defer in.mu.Unlock()
	clear(in.contexts)
	clear(in.data)
	clear(in.control)
	in.digest = 0
}
