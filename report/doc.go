// Package report renders what falab measured as one self-contained HTML
// file that people would rather look at than read: a scenario run (the
// verdict, the steps with their expected and observed values, the
// timeline, a chart of every flow around each fault with the fault and the
// takeover marked, and the per-fault figures) and a benchmark (each figure
// charted beside its target and the kernel's).
//
// The charts are inline SVG drawn with gonum.org/v1/plot (vgsvg); the file
// has no external asset (no script, stylesheet, font or image link), so it
// can be mailed or attached to an issue as is.
//
// It must not import lab runtime code that acts (lab.Up, faults, agents) or
// anything below it (firewall, unit): it renders values it is given, and
// imports scenario, lab and labbench for their report types only.
package report
