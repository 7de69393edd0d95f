package consent_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
)

func TestParseCSV(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []consent.Row
		wantErr []string // every fragment must appear in the error
	}{
		{"addresses and domains", "email_or_domain,preference\nAnn@Fabrikam.com,allow\n@contoso.com, DO_NOT_ALLOW\r\n\nnorthwind.example.,Do_Not_Allow\n",
			[]consent.Row{{Line: 2, Target: "ann@fabrikam.com", Preference: consent.Allow},
				{Line: 3, Target: "contoso.com", Preference: consent.DoNotAllow},
				{Line: 5, Target: "northwind.example", Preference: consent.DoNotAllow}}, nil},
		{"byte order mark and quoted fields", "\ufeffEMAIL_OR_DOMAIN,Preference\n\"bob@x.com\",\"ALLOW\"\n",
			[]consent.Row{{Line: 2, Target: "bob@x.com", Preference: consent.Allow}}, nil},
		{"every bad line named", "email_or_domain,preference\nok@x.com,ALLOW\nnot an address,ALLOW\nc@x.com,MAYBE\nd@x.com\ne@x.com,ALLOW,extra\n",
			nil, []string{"nothing imported", "line 3:", "line 4: preference \"MAYBE\"", "line 5: 1 fields", "line 6: 3 fields"}},
		{"wrong header", "email,pref\na@x.com,ALLOW\n", nil, []string{"line 1:", "email_or_domain,preference"}},
		{"empty", "", nil, []string{"empty"}},
		{"header only", "email_or_domain,preference\n", nil, []string{"no rows"}},
		{"broken quote", "email_or_domain,preference\na@x.com,ALLOW\n\"b@x.com,ALLOW\n", nil, []string{"line 3:", "not valid CSV"}},
		{"a domain without a dot", "email_or_domain,preference\nlocalhost,ALLOW\n", nil, []string{"line 2:", `"localhost" is not an email address or a domain`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := consent.ParseCSV(tt.in)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(rows, tt.want) {
					t.Fatalf("rows %+v, want %+v", rows, tt.want)
				}
				return
			}
			if !errors.Is(err, followed.ErrBadInput) || rows != nil {
				t.Fatalf("rows %+v, err %v: want a bad-input error and no rows", rows, err)
			}
			for _, frag := range tt.wantErr {
				if !strings.Contains(err.Error(), frag) {
					t.Errorf("error %q lacks %q", err, frag)
				}
			}
		})
	}
}

func TestParseCSVCapsNamedLines(t *testing.T) {
	in := "email_or_domain,preference\n" + strings.Repeat("bad,ALLOW\n", 30)
	_, err := consent.ParseCSV(in)
	if err == nil || !strings.Contains(err.Error(), "line 21:") || strings.Contains(err.Error(), "line 22:") ||
		!strings.Contains(err.Error(), "and 10 more bad lines") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParseCSV(f *testing.F) {
	for _, s := range []string{"email_or_domain,preference\na@x.com,ALLOW\n", "email_or_domain,preference\n@x.com,DO_NOT_ALLOW",
		"\ufeffemail_or_domain,preference\n\"a,b\",ALLOW", "", "\"", "email_or_domain,preference\n\xff@x.com,ALLOW"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rows, err := consent.ParseCSV(in)
		if err != nil {
			if rows != nil || !errors.Is(err, followed.ErrBadInput) {
				t.Fatalf("error %v with rows %v", err, rows)
			}
			return
		}
		if len(rows) == 0 {
			t.Fatal("success with no rows")
		}
		for _, r := range rows {
			if again, err := consent.NormalizeTarget(r.Target); err != nil || again != r.Target {
				t.Fatalf("row target %q is not canonical: %q %v", r.Target, again, err)
			}
			if r.Preference != consent.Allow && r.Preference != consent.DoNotAllow {
				t.Fatalf("row preference %q", r.Preference)
			}
		}
	})
}
