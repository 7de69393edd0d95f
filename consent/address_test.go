package consent_test

import (
	"strings"
	"testing"

	"github.com/engage-email/engage/consent"
)

func TestReplaceAddress(t *testing.T) {
	const ann = "ann@fabrikam.com"
	tests := []struct {
		name, text, want string
		n                int
	}{
		{"the address alone", ann, "X", 1},
		{"in any case", "Dear ANN@Fabrikam.COM,", "Dear X,", 1},
		{"twice, side by side", ann + "," + ann + ";" + ann, "X,X;X", 3},
		{"in a link's query", "https://contoso.example/?who=" + ann + "&x=1", "https://contoso.example/?who=X&x=1", 1},
		{"between angle brackets", "Ann <" + ann + ">", "Ann <X>", 1},
		{"at the end of a sentence", "Write to " + ann + ".", "Write to X.", 1},
		{"inside a longer local part", "jo" + ann, "jo" + ann, 0},
		{"after a dot in the local part", "jo." + ann, "jo." + ann, 0},
		{"inside a longer domain", ann + ".au", ann + ".au", 0},
		{"with a longer top-level name", ann + "s", ann + "s", 0},
		{"one of each", "jo" + ann + " and " + ann, "jo" + ann + " and X", 1},
		{"not there", "nothing here", "nothing here", 0},
		{"beside other scripts", "é" + ann + "é", "éXé", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := consent.ReplaceAddress(tt.text, ann, "X")
			if got != tt.want || n != tt.n {
				t.Errorf("ReplaceAddress(%q) = %q, %d; want %q, %d", tt.text, got, n, tt.want, tt.n)
			}
		})
	}
}

func TestReplaceAddressInFileName(t *testing.T) {
	const ann = "ann@fabrikam.com"
	tests := []struct {
		name, file, want string
		n                int
	}{
		{"before the extension", "Quote for " + ann + ".pdf", "Quote for X.pdf", 1},
		{"a long extension", ann + ".docx", "X.docx", 1},
		{"inside the name", ann + " - quote.pdf", "X - quote.pdf", 1},
		{"no extension", "Quote for " + ann, "Quote for X", 1},
		{"someone else's before the extension", "Quote for jo" + ann + ".pdf", "Quote for jo" + ann + ".pdf", 0},
		{"a longer domain before the extension", ann + ".au.pdf", ann + ".au.pdf", 0},
		{"not there", "Quote.pdf", "Quote.pdf", 0},
		{"alone and before the extension", ann + " and " + ann + ".pdf", "X and X.pdf", 2},
		{"before two extensions", "Quote " + ann + ".tar.gz", "Quote X.tar.gz", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := consent.ReplaceAddressInFileName(tt.file, ann, "X")
			if got != tt.want || n != tt.n {
				t.Errorf("ReplaceAddressInFileName(%q) = %q, %d; want %q, %d", tt.file, got, n, tt.want, tt.n)
			}
		})
	}
}

// FuzzReplaceAddress checks that whatever the text, the replacement leaves no standalone occurrence
// behind and changes nothing when it reports none.
func FuzzReplaceAddress(f *testing.F) {
	for _, s := range []string{"ann@fabrikam.com", "joann@fabrikam.com ann@fabrikam.com.", "ANN@FABRIKAM.COM", "İann@fabrikam.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		got, n := consent.ReplaceAddress(text, "ann@fabrikam.com", "[erased]")
		if n == 0 && got != text {
			t.Fatalf("no replacement reported, yet %q became %q", text, got)
		}
		if again, m := consent.ReplaceAddress(got, "ann@fabrikam.com", "[erased]"); m != 0 || again != got {
			t.Fatalf("%q still holds a standalone address after replacing: %q", text, got)
		}
		if n > 0 && strings.Count(got, "[erased]") < n {
			t.Fatalf("%d replacements reported, %q shows fewer", n, got)
		}
	})
}
