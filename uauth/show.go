package uauth

import (
	"fmt"
	"io"
	"time"
)

// Show writes "show uauth [USER]" as the ASA prints it (user "" lists
// all): the current and most-seen counts of authenticated users and of
// authentications in progress, then each entry with the configured
// timeouts.
func (t *Table) Show(w io.Writer, user string, now time.Time) error {
	entries := t.Entries()
	t.mu.RLock()
	most := t.mostSeen
	t.mu.RUnlock()
	t.amu.Lock()
	prog, mostProg := t.inProgress(now.UnixNano()), t.mostInProgress
	t.amu.Unlock()
	if _, err := fmt.Fprintf(w, "%24s%-11s%s\n%-26s%-11d%d\n%-26s%-11d%d\n", "", "Current", "Most Seen",
		"Authenticated Users", len(entries), most, "Authen In Progress", prog, mostProg); err != nil {
		return err
	}
	for _, e := range entries {
		if user != "" && e.User != user {
			continue
		}
		if _, err := fmt.Fprintf(w, "user '%s' at %s, authenticated\n   absolute   timeout: %s\n   inactivity timeout: %s\n",
			e.User, e.Addr, hms(t.cfg.Absolute), hms(t.cfg.Inactivity)); err != nil {
			return err
		}
	}
	return nil
}

// hms formats d as the ASA's H:MM:SS.
func hms(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}
