package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestScrapeRecorder reads the recorder's counts from a metrics page, and refuses a page that is not
// Engage's or not there, so that a run says it could not read them rather than print zeros.
func TestScrapeRecorder(t *testing.T) {
	const page = `# TYPE engage_tracking_events_recorded_total counter
engage_tracking_events_recorded_total 1200
# TYPE engage_tracking_events_spooled_total counter
engage_tracking_events_spooled_total 3
# TYPE engage_tracking_events_replayed_total counter
engage_tracking_events_replayed_total 2
# TYPE engage_tracking_events_failed_total counter
engage_tracking_events_failed_total 0
# TYPE engage_tracking_commits_total counter
engage_tracking_commits_total 80
# TYPE engage_tracking_spool_pending_events gauge
engage_tracking_spool_pending_events 1
`
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr string
	}{
		{"engage's metrics", http.StatusOK, page, ""},
		{"another program's metrics", http.StatusOK, "# TYPE up gauge\nup 1\n", "serves no engage_tracking_commits_total"},
		{"not text format", http.StatusOK, "engage_tracking_commits_total{", "recorder metrics"},
		{"no metrics there", http.StatusNotFound, "404 page not found\n", "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			st, err := scrapeRecorder(context.Background(), strings.TrimPrefix(srv.URL, "http://"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Recorded != 1200 || st.Spooled != 3 || st.Replayed != 2 || st.Failed != 0 || st.Commits != 80 || st.SpoolPending != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}
