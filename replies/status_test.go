package replies

import "testing"

func TestIsHardStatus(t *testing.T) {
	tests := []struct {
		status string
		want   bool
	}{
		{"5.1.1", true},  // bad destination mailbox
		{"5.1.10", true}, // Exchange Online recipient not found
		{"5.4.1", true},  // Exchange Online: recipient address rejected
		{"5.4.4", true},  // unable to route
		{"5.0.0", true},  // permanent, unspecified
		{"550 5.1.1 user unknown", true},
		{"#5.1.1 smtp;550", true},
		{"5.2.2", false},   // mailbox full: Dynamics counts it soft
		{"5.2.3", false},   // message too big for the mailbox
		{"5.3.4", false},   // message too big for the system
		{"5.4.7", false},   // delivery time expired
		{"5.7.1", false},   // refused by policy; the address exists
		{"5.7.606", false}, // sender's IP banned
		{"4.2.2", false},   // mailbox full, transient
		{"4.4.7", false},   // expired
		{"550 4.4.7 QUEUE.Expired", false},
		{"2.0.0", false},
		{"", false},
		{"550", false},       // no enhanced code
		{"55.1.1", false},    // not a code
		{"15.20.1.1", false}, // a version number
		{"5.1", false},
		{"5.1.1234", false},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			if got := IsHardStatus(tt.status); got != tt.want {
				t.Errorf("IsHardStatus(%q) = %v, want %v", tt.status, got, tt.want)
			}
		})
	}
}

func TestEnhancedCode(t *testing.T) {
	tests := []struct {
		in, classes, want string
	}{
		{"Status: 5.1.1 (bad mailbox)", "45", "5.1.1"},
		{"Remote Server returned '550 5.4.1 Access denied'", "45", "5.4.1"},
		{"server 10.4.5.1 said 4.2.2", "45", "4.2.2"},
		{"version 15.20.8398.017", "45", ""},
		{"5.1.1.", "5", "5.1.1"},
		{"5.1.1a", "5", ""},
		{"x5.1.1", "5", ""},
		{"2.0.0 ok", "45", ""},
		{"2.0.0 ok", "245", "2.0.0"},
		{"4.", "4", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := enhancedCode(tt.in, tt.classes); got != tt.want {
				t.Errorf("enhancedCode(%q, %q) = %q, want %q", tt.in, tt.classes, got, tt.want)
			}
		})
	}
}

func TestBasicCode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"host said: 550 user unknown", "550"},
		{"550-5.1.1 The email account", "550"},
		{"452 4.2.2 full", "452"},
		{"port 25550 open", ""},
		{"5500 things", ""},
		{"250 ok", ""},
		{"550", "550"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := basicCode(tt.in); got != tt.want {
				t.Errorf("basicCode(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestClip(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"}, // never cut inside "é"
		{"éé", 3, "é"},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			if got := clip(tt.s, tt.n); got != tt.want {
				t.Errorf("clip(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
			}
		})
	}
}
