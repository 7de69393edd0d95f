package mongo

import "testing"

func TestRecipientsOfGolden(t *testing.T) {
	for _, tc := range []struct {
		name, target string
	}{
		{"recipients-of-address", "ann.o'neil+sales@fabrikam.com"},
		{"recipients-of-domain", "fabrikam.com"},
	} {
		t.Run(tc.name, func(t *testing.T) { golden(t, tc.name, recipientsOf(tc.target)) })
	}
}
