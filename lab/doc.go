// Package lab turns lab files into running labs: it parses and validates the
// YAML (every mistake named with file, line and field), resolves a lab into a
// topology plan and unit configurations, records running labs in their state
// directory under /run/falab/LAB, and brings labs up and down, cleaning up
// even after a crash or a half-finished up.
// It must not import tui, labbench or cmd/falab: the arrows point from the
// command down to lab, never back.
package lab
