package module

// matcher is an Aho-Corasick automaton compiled into a full DFA: one
// transition per (state, byte), so a scan is one table load per byte and
// its whole state is one int32 that a stream carries between segments.
// Size is states*256*4 bytes; New bounds the total signature length.
type matcher struct {
	next []int32 // next[state<<8|b]; ^state if that state ends a signature
	out  []int32 // out[state]: index+1 of a signature ending here (0 none)
}

func compile(patterns [][]byte) *matcher {
	n := 1
	for _, p := range patterns {
		n += len(p)
	}
	m := &matcher{next: make([]int32, 0, n*256), out: make([]int32, 0, n)}
	newState := func() int32 {
		for range 256 {
			m.next = append(m.next, -1)
		}
		m.out = append(m.out, 0)
		return int32(len(m.out) - 1)
	}
	newState() // the root
	for i, p := range patterns {
		s := int32(0)
		for _, b := range p {
			if m.next[int(s)<<8|int(b)] < 0 {
				t := newState()
				m.next[int(s)<<8|int(b)] = t
			}
			s = m.next[int(s)<<8|int(b)]
		}
		if m.out[s] == 0 {
			m.out[s] = int32(i + 1)
		}
	}
	// Breadth first: each state's failure state is already complete when
	// the state is reached, so missing transitions copy the failure's.
	fail := make([]int32, len(m.out))
	queue := make([]int32, 0, len(m.out))
	for b := range 256 {
		if t := m.next[b]; t > 0 {
			fail[t] = 0
			queue = append(queue, t)
		} else {
			m.next[b] = 0
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if m.out[s] == 0 {
			m.out[s] = m.out[fail[s]]
		}
		for b := range 256 {
			i := int(s)<<8 | b
			if t := m.next[i]; t >= 0 {
				fail[t] = m.next[int(fail[s])<<8|b]
				queue = append(queue, t)
			} else {
				m.next[i] = m.next[int(fail[s])<<8|b]
			}
		}
	}
	// Mark transitions into matching states by complementing them, so a
	// scan tests the loaded value instead of loading out[] per byte.
	for i, t := range m.next {
		if m.out[t] != 0 {
			m.next[i] = ^t
		}
	}
	return m
}

// scan runs data from state and returns the state after it, or the index
// of the first signature that ends inside data (found < 0 if none).
func (m *matcher) scan(state int32, data []byte) (next int32, found int) {
	s := state
	for _, b := range data {
		s = m.next[int(s)<<8|int(b)]
		if s < 0 {
			s = ^s
			return s, int(m.out[s] - 1)
		}
	}
	return s, -1
}
