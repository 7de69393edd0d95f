package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph"
	"github.com/engage-email/engage/inbound"
	"github.com/engage-email/engage/recommend"
	"github.com/engage-email/engage/server"
	"github.com/engage-email/engage/store/sqlite"
)

// engage is a real Engage on the embedded store, served over real HTTP.
type engage struct {
	URL    string
	DB     *sqlite.DB
	Alerts *alerts.Service
	// AttachmentsDir holds the local drive and the copies delivery attaches.
	AttachmentsDir string
	// Followed is the followed-messages service, for tests that switch its options (opt-out links).
	Followed *followed.Service
	// Metrics is the registry the server measures into, as /metrics would serve it.
	Metrics *prometheus.Registry
}

// start runs an Engage; maxAttachment, when given, is its attachment size limit (default 1 MiB).
func start(t *testing.T, maxAttachment ...int64) *engage {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	db := sqlite.OpenTemp(t)
	log := slog.New(server.LogHandler{Handler: slog.NewJSONHandler(io.Discard, nil)})
	keys, err := followed.LoadOrCreateKeyRing(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	devices, err := followed.NewDeviceParser()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := followed.NewService(db, keys, base, followed.Limits{MaxHTMLBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	consents, err := consent.NewService(context.Background(), db, consent.Options{Erasers: []consent.Eraser{db.FollowedEraser(), db.AlertsEraser(), db.DeliveryEraser(), db.InboundEraser()}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	svc.SetGate(consents)
	files := startAttachments(t, db, svc, consents, base, maxAttachment)
	ctx, cancel := context.WithCancel(context.Background())
	alertSvc := alerts.New(db, db, alerts.Options{Log: log, Buffer: 8, TailInterval: 50 * time.Millisecond,
		ReminderInterval: 50 * time.Millisecond, EngagementInterval: 50 * time.Millisecond, Sends: delivery.SendStates{Store: db}})
	if err := alertSvc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	rec := followed.NewRecorder(db, followed.RecorderOptions{Log: log, OnFirstOpen: alertSvc})
	go rec.Run(ctx)
	feeds := startFeed(ctx, db, rec, consents, alertSvc, log)
	outbox := delivery.NewOutbox(db, time.Now)
	sends := delivery.New(db, db, outbox, delivery.Options{PollEvery: 50 * time.Millisecond, Files: files.svc, Gate: consents})
	sendsDone := make(chan struct{})
	go func() { defer close(sendsDone); sends.Run(ctx) }()
	replies := inbound.NewProcessor(db, db, consents, nil, inbound.Options{Log: log, PollEvery: 50 * time.Millisecond})
	repliesDone := make(chan struct{})
	go func() { defer close(repliesDone); replies.Run(ctx) }()
	sendTimes, err := recommend.NewSendTimes(db, rand.New(rand.NewPCG(1, 2)), 0)
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := recommend.NewCatalog(db, db, db, time.Now, followed.NewID)
	if err != nil {
		t.Fatal(err)
	}
	metrics := prometheus.NewRegistry()
	srv, err := server.New(server.Options{BodyLimit: 256 << 10, UploadLimit: files.limit + 64<<10, Introspection: true, ComplexityLimit: 200,
		AllowedOrigins: []string{"https://outlook.office.com"}},
		server.Deps{Log: log, Auth: auth.NewLocal([]string{"admin@contoso.com"}).WithIntegrations([]string{integrationUser}), Ready: db.Ping,
			Resolver: &graph.Resolver{Followed: svc, Consent: consents, Alerts: alertSvc, SendTimes: sendTimes, Catalog: catalog,
				Delivery: sends, LocalOutbox: outbox, Attachments: files.svc, Feed: feeds.svc}, Keys: keys, Files: files.handler, Devices: devices, Recorder: rec,
			IPStorage: consents.IPStorage, Records: consents.Records, Inbound: replies, OptOuts: feeds.optOuts, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		cancel()
		rec.Wait()
		alertSvc.Wait()
		<-sendsDone
		<-repliesDone
		<-feeds.done
	})
	return &engage{URL: ts.URL, DB: db, Alerts: alertSvc, AttachmentsDir: files.dir, Followed: svc, Metrics: metrics}
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
	status int
}

func (r gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// gql posts a GraphQL request as user ("" = anonymous) and decodes the answer into out when given.
func (e *engage) gql(t *testing.T, user, query string, vars map[string]any, out any) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest("POST", e.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.Header.Set(auth.LocalHeader, user)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r gqlResponse
	r.status = res.StatusCode
	raw, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("status %d, body %q: %v", res.StatusCode, raw, err)
	}
	if out != nil && len(r.Data) > 0 && string(r.Data) != "null" {
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Fatalf("decode %s: %v", r.Data, err)
		}
	}
	return r
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
