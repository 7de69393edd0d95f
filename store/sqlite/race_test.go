//go:build race

package sqlite_test

// raceDetector is true when the tests run under -race.
const raceDetector = true
