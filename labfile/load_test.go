package labfile

import (
	"testing"

	"github.com/falab/falab/labs"
)

func TestBuiltinLabsLoad(t *testing.T) {
	for _, name := range labs.Names() {
		data, _ := labs.Get(name)
		l, err := Load("builtin:"+name, data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(l.Units) != 2 || l.Units[0].Role != "primary" {
			t.Fatalf("%s: units %+v", name, l.Units)
		}
	}
}
