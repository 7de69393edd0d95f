//go:build !linux

package child

import "os/exec"

// dieWithParent does nothing here: only Linux kills a child when its parent dies, and elsewhere an
// Engage started by a tool that was killed outright keeps running until it is stopped by hand.
func dieWithParent(*exec.Cmd) {}
