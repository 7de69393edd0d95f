// Package machines labels every tracked open and click as a person's or a machine's (Apple's
// privacy proxy, a link scanner, a prefetch) and names the rule that decided, so engagement counts
// people by default. Rules are data: a JSON file, built-in defaults (see DefaultRules), swapped at
// run time by Watch. The package does no storage and no HTTP.
package machines
