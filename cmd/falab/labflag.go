package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/falab/falab/lab"
)

// labEnv names the lab a command means when --lab is not given; `falab
// exec` and `falab shell` set it inside a node, so a falab command run
// there means that node's lab.
const labEnv = "FALAB_LAB"

// labFlag adds --lab to a verb that works on a running lab.
func labFlag(cmd *cobra.Command, name *string) {
	cmd.Flags().StringVar(name, "lab", "", "the running lab to use (default: $"+labEnv+", else the only running lab)")
}

// pickLab says which running lab a command means: the positional LAB
// argument (where a verb takes one), else --lab, else $FALAB_LAB, else
// the only running lab. With several running and none named, the error
// lists them and says how to choose.
func pickLab(flagLab, positional string) (string, error) {
	name := positional
	if flagLab != "" {
		if name != "" && name != flagLab {
			return "", usageError{fmt.Sprintf("lab %q and --lab %q: give one", name, flagLab)}
		}
		name = flagLab
	}
	if name == "" {
		name = os.Getenv(labEnv)
	}
	if name != "" {
		if _, err := lab.ReadState(name); err != nil {
			if errors.Is(err, lab.ErrNotRunning) {
				return "", notRunning(name)
			}
			return "", err
		}
		return name, nil
	}
	running, err := lab.Running()
	if err != nil {
		return "", err
	}
	switch len(running) {
	case 0:
		return "", lab.ErrNoLab
	case 1:
		return running[0], nil
	default:
		return "", fmt.Errorf("%d labs are running (%s): say which with --lab NAME or %s=NAME", len(running), strings.Join(running, ", "), labEnv)
	}
}

// notRunning names the lab that is not running and the ones that are.
func notRunning(name string) error {
	running, _ := lab.Running()
	if len(running) == 0 {
		return fmt.Errorf("lab %s is not running; no lab is (falab up starts one)", name)
	}
	return fmt.Errorf("lab %s is not running (running: %s)", name, strings.Join(running, ", "))
}
