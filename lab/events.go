package lab

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/falab/falab/api"
)

// eventsFile is the lab's own timeline (faults, traffic), one JSON event a
// line, appended by whichever falab process acts on the lab. Appends of a
// single short line are atomic with O_APPEND, so processes do not mix.
func eventsFile(labName string) string { return filepath.Join(Dir(labName), "events.jsonl") }

// RecordEvent appends an event to the lab's timeline.
func RecordEvent(labName, kind, msg string) {
	e := api.Event{Time: time.Now(), Unit: "lab", Kind: kind, Msg: msg}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	f, err := os.OpenFile(eventsFile(labName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.Write(append(b, '\n'))
}

// LabEvents reads the lab's own timeline, numbering events from 1.
func LabEvents(labName string) ([]api.Event, error) {
	f, err := os.Open(eventsFile(labName))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []api.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e api.Event
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			e.Seq = uint64(len(out) + 1)
			out = append(out, e)
		}
	}
	return out, sc.Err()
}
