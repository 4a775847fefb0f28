package serve

import (
	"errors"
	"fmt"
)

// SetAdapters makes the adapters of the server's spec those of want, as
// SetRules does for rules: a replica under an agent is told its
// allocation's task.builtin.adapters whenever the job's version moves
// (an update of the adapter list is applied in place, cmd/ark
// serve_rules_sync.go). It returns at once: a new adapter (or one whose
// checkpoint moved) is registered and fetched in the background, as at
// start, so requests for the base and the other adapters never wait on
// it; one no longer wanted is unregistered, and requests already running
// with it finish. Adapters added at run time through POST /v1/adapters
// and not named in any spec stay; a spec adapter of a name taken at run
// time replaces it (the spec is what every replica serves). The errors of
// names it could not take (the base's name) are joined; the others are
// applied all the same.
func (s *Server) SetAdapters(want []AdapterSpec) error {
	s.specMu.Lock()
	defer s.specMu.Unlock()
	next := make(map[string]bool, len(want))
	var errs []error
	for _, a := range want {
		next[a.Name] = true
		if cur, ok := s.reg.lookup(a.Name); ok {
			if s.reg.same(cur, a.URI) {
				// Kept; add again fetches it anew if its last fetch
				// failed (a new version of the spec tries again).
				if _, err := s.reg.add(a.Name, a.URI, a.Pinned); err != nil {
					errs = append(errs, fmt.Errorf("adapter %q: %w", a.Name, err))
				}
				s.reg.pin(cur, a.Pinned)
				continue
			}
			_ = s.reg.remove(a.Name) // moved: drop the old checkpoint's weights
			s.limits.forget(a.Name)
		}
		if _, err := s.reg.add(a.Name, a.URI, a.Pinned); err != nil {
			errs = append(errs, fmt.Errorf("adapter %q: %w", a.Name, err))
			delete(next, a.Name)
		}
	}
	for name := range s.specAdapters {
		if next[name] {
			continue
		}
		if err := s.reg.remove(name); err != nil && !errors.Is(err, ErrUnknownAdapter) {
			errs = append(errs, err)
		}
		s.limits.forget(name)
	}
	s.specAdapters = next
	return errors.Join(errs...)
}
