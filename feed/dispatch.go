package feed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/engage-email/engage/followed"
)

// Retry schedule: exponential from RetryBase, capped at RetryCap, each wait jittered into its upper
// half so that many endpoints failing together do not retry in step; an endpoint still failing
// DisableAfter its first failure is switched off.
const (
	RetryBase    = 10 * time.Second
	RetryCap     = time.Hour
	DisableAfter = 24 * time.Hour
	// KeepDeliveries is how long the delivery log is kept.
	KeepDeliveries = 30 * 24 * time.Hour
	// LeaseMargin is how much longer than a delivery attempt an endpoint's lease lasts at least: time
	// for reading the batch before the attempt and saving its outcome after.
	LeaseMargin = 30 * time.Second
)

// Payload is the JSON body of a delivery.
type Payload struct {
	Endpoint string          `json:"endpoint"`
	Key      string          `json:"key"` // the Idempotency-Key header, repeated for receivers that log bodies
	Records  []PayloadRecord `json:"records"`
}

// PayloadRecord is one response record as receivers read it.
type PayloadRecord struct {
	ID        string         `json:"id"`
	Cursor    string         `json:"cursor"`
	Category  Category       `json:"category"`
	Message   PayloadMessage `json:"message"`
	Recipient string         `json:"recipient,omitempty"`
	At        time.Time      `json:"at"`
	Details   PayloadDetails `json:"details"`
}

// PayloadMessage names the followed message a record is about.
type PayloadMessage struct {
	ID      string `json:"id"`
	Subject string `json:"subject"`
	Owner   string `json:"owner"`
}

// PayloadDetails are what the category alone does not say.
type PayloadDetails struct {
	Kind          followed.EventKind `json:"kind"`
	URL           string             `json:"url,omitempty"`
	Device        *PayloadDevice     `json:"device,omitempty"`
	Machine       bool               `json:"machine"`
	MachineReason string             `json:"machineReason,omitempty"`
}

// PayloadDevice is where an open or click came from.
type PayloadDevice struct {
	Type   followed.DeviceType `json:"type"`
	OS     string              `json:"os"`
	Client string              `json:"client"`
}

// PayloadOf turns records into what a receiver gets.
func PayloadOf(endpointID, key string, rs []Record) Payload {
	p := Payload{Endpoint: endpointID, Key: key, Records: make([]PayloadRecord, len(rs))}
	for i, r := range rs {
		pr := PayloadRecord{ID: r.EventID, Cursor: EncodeCursor(r.Seq), Category: r.Category,
			Message: PayloadMessage{ID: r.MessageID, Subject: r.Subject, Owner: r.Owner}, Recipient: r.Recipient, At: r.At.UTC(),
			Details: PayloadDetails{Kind: r.Kind, URL: r.URL, Machine: r.Machine, MachineReason: r.Reason}}
		if r.Device.Type != "" {
			pr.Details.Device = &PayloadDevice{Type: r.Device.Type, OS: r.Device.OS, Client: r.Device.Client}
		}
		p.Records[i] = pr
	}
	return p
}

// BatchKey is a batch's idempotency key: stable for the endpoint and the positions it spans.
func BatchKey(endpointID string, first, last int64) string {
	return endpointID + ":" + strconv.FormatInt(first, 10) + "-" + strconv.FormatInt(last, 10)
}

// Run delivers to every endpoint that is due, on a ticker, until ctx is done; deliveries in flight
// are abandoned (their batch stays pending and is retried by the next run) and waited for.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.Poll)
	defer t.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	defer s.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.dispatch(ctx)
		case <-prune.C:
			if _, err := s.store.PruneDeliveries(ctx, s.now().Add(-KeepDeliveries), 1000); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "webhook delivery log not pruned", "err", err)
			}
		}
	}
}

// Tick starts what is due now and waits for it to finish: Run does the first half on every poll,
// and tests call Tick with a fake clock to step through retries.
func (s *Service) Tick(ctx context.Context) {
	s.dispatch(ctx)
	s.wg.Wait()
}

// dispatch starts a delivery for each due endpoint with none in flight, while slots are free; the
// rest wait for the next poll, so a slow endpoint holds one slot and never the others. busy keeps
// this process's own steps apart; the store's lease keeps instances apart.
func (s *Service) dispatch(ctx context.Context) {
	eps, err := s.store.Endpoints(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "webhook endpoints not read", "err", err)
		}
		return
	}
	now := s.now()
	for _, ep := range eps {
		if !ep.Enabled() || now.Before(ep.State.NextAt) || s.leasedElsewhere(ep, now) {
			continue
		}
		s.mu.Lock()
		if s.busy[ep.ID] {
			s.mu.Unlock()
			continue
		}
		select {
		case s.slots <- struct{}{}:
		default:
			s.mu.Unlock()
			return
		}
		s.busy[ep.ID] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer func() {
				s.mu.Lock()
				delete(s.busy, ep.ID)
				s.mu.Unlock()
				<-s.slots
				s.wg.Done()
			}()
			if err := s.stepLeased(ctx, ep.ID); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "webhook step failed", "endpoint", ep.ID, "err", err)
			}
		}()
	}
}

// leasedElsewhere reports whether another instance is stepping ep, so claiming it would be a wasted write.
func (s *Service) leasedElsewhere(ep Endpoint, now time.Time) bool {
	return ep.LeaseOwner != "" && ep.LeaseOwner != s.opts.Instance && now.Before(ep.LeaseUntil)
}

// stepLeased claims the endpoint for this instance, then steps it. The claim reads it afresh, so a
// list read before the last step finished (here or on another instance) cannot send that batch again,
// and its lease keeps every other instance off the endpoint until the step has saved.
func (s *Service) stepLeased(ctx context.Context, id string) error {
	now := s.now()
	ep, err := s.store.ClaimEndpoint(ctx, id, s.opts.Instance, now, now.Add(s.opts.Lease))
	switch {
	case errors.Is(err, ErrTaken), errors.Is(err, followed.ErrNotFound):
		return nil // stepped since the list was read, disabled, another instance's, or deleted
	case err != nil:
		return fmt.Errorf("claim endpoint %s: %w", id, err)
	}
	// The step is cut off well before the lease ends, so its last save lands while this instance
	// still holds the endpoint; a step cut off leaves its batch pending for the next claim.
	sctx, cancel := context.WithTimeout(ctx, s.opts.Lease-LeaseMargin/2)
	defer cancel()
	err = s.step(sctx, ep)
	if err == nil && ctx.Err() == nil && sctx.Err() != nil {
		return fmt.Errorf("step of %s ran past %s of its lease; its batch stays pending", id, s.opts.Lease-LeaseMargin/2)
	}
	return err
}

// step moves one endpoint on: forms a batch if none is pending, then tries to deliver it.
func (s *Service) step(ctx context.Context, ep Endpoint) error {
	st := ep.State
	var records []Record
	if st.Batch == nil {
		p, err := s.store.Responses(ctx, Query{After: st.Cursor, Limit: s.opts.MaxBatch, Kinds: Kinds(ep.Categories)})
		if err != nil {
			return fmt.Errorf("read responses: %w", err)
		}
		if len(p.Records) == 0 {
			if p.Through < p.Newest {
				st.Cursor = p.Through // only filtered-out positions so far: look again at once
			} else {
				st.Cursor, st.NextAt = max(st.Cursor, p.Through), s.now().Add(ep.Interval)
			}
			return s.save(ctx, ep.ID, st, nil)
		}
		records = p.Records
		first, last := records[0].Seq, records[len(records)-1].Seq
		// Fixed before it is sent: a crash from here on retries this batch under this key.
		st.Batch = &Batch{Key: BatchKey(ep.ID, first, last), First: first, Last: last, Through: p.Through,
			Categories: ep.Categories, FormedAt: s.now()}
		err = s.store.FixBatch(ctx, ep.ID, s.opts.Instance, st)
		if errors.Is(err, followed.ErrNotFound) {
			return nil // deleted since it was claimed: nothing to send it to
		}
		if err != nil {
			return fmt.Errorf("fix batch %s of %s: %w", st.Batch.Key, ep.ID, err)
		}
	} else {
		p, err := s.store.Responses(ctx, Query{After: st.Batch.First - 1, Through: st.Batch.Last, Limit: MaxPage,
			Kinds: Kinds(st.Batch.Categories)})
		if err != nil {
			return fmt.Errorf("read batch %s: %w", st.Batch.Key, err)
		}
		records = p.Records
	}
	b := *st.Batch
	if len(records) == 0 {
		// Every record of the batch was erased or purged since it was formed: nothing is left to send.
		st.Cursor, st.Batch = b.Through, nil
		return s.save(ctx, ep.ID, st, nil)
	}
	body, err := json.Marshal(PayloadOf(ep.ID, b.Key, records))
	if err != nil {
		return fmt.Errorf("encode batch %s: %w", b.Key, err)
	}
	started := time.Now()
	code, sendErr := s.send(ctx, ep, b.Key, body)
	if ctx.Err() != nil {
		return nil // shutting down: not the receiver's failure; the batch stays pending
	}
	now := s.now()
	b.Attempts++
	d := Delivery{ID: followed.NewID(now), EndpointID: ep.ID, Key: b.Key, Attempt: b.Attempts, At: now, StatusCode: code,
		Duration: time.Since(started), Records: len(records), First: b.First, Last: b.Last}
	if sendErr == nil {
		d.Outcome = Delivered
		st.Cursor, st.Batch, st.FailingSince = b.Through, nil, time.Time{}
		st.NextAt = now.Add(ep.Interval)
		if len(records) >= s.opts.MaxBatch {
			st.NextAt = now // a backlog: the next batch goes at once
		}
		return s.save(ctx, ep.ID, st, &d)
	}
	d.Outcome, d.Error = Failed, sendErr.Error()
	st.Batch = &b
	if st.FailingSince.IsZero() {
		st.FailingSince = now
	}
	if now.Sub(st.FailingSince) < DisableAfter {
		st.NextAt = now.Add(s.backoff(b.Attempts))
		return s.save(ctx, ep.ID, st, &d)
	}
	d.Outcome = Disabled
	st.DisabledAt = now
	st.DisabledReason = fmt.Sprintf("failing since %s: %s", st.FailingSince.Format(time.RFC3339), sendErr)
	// The admins are told before the endpoint is switched off: once off it is never stepped again, so
	// an alert that failed after would be lost. If the alert fails, the step fails and the next one
	// tries both again; if the save fails, the alert is not repeated (one per failure streak).
	if s.opts.Alerts != nil {
		owners := append([]string{ep.CreatedBy, ep.UpdatedBy}, s.opts.Admins...)
		if err := s.opts.Alerts.WebhookDisabled(ctx, owners, ep.ID, ep.URL, st.DisabledReason, st.FailingSince, now); err != nil {
			return fmt.Errorf("alert admins that %s is disabled: %w", ep.ID, err)
		}
	}
	if err := s.save(ctx, ep.ID, st, &d); err != nil {
		return err
	}
	s.log.WarnContext(ctx, "webhook disabled", "endpoint", ep.ID, "url", ep.URL, "reason", st.DisabledReason)
	return nil
}

// save stores what a step came to and releases the endpoint's lease.
func (s *Service) save(ctx context.Context, id string, st State, d *Delivery) error {
	err := s.store.SaveState(ctx, id, s.opts.Instance, st, d)
	if errors.Is(err, followed.ErrNotFound) {
		return nil // deleted while this step ran
	}
	if err != nil {
		return fmt.Errorf("save state of %s: %w", id, err)
	}
	return nil
}

// backoff is the wait after the n-th failed attempt.
func (s *Service) backoff(n int) time.Duration {
	d := RetryBase
	for i := 1; i < n && d < RetryCap; i++ {
		d *= 2
	}
	d = min(d, RetryCap)
	return d/2 + time.Duration(s.opts.Jitter(int64(d/2)+1))
}

// send posts one signed attempt and says whether the receiver took it (a 2xx).
func (s *Service) send(ctx context.Context, ep Endpoint, key string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Engage-Webhook/1")
	req.Header.Set(IdempotencyHeader, key)
	req.Header.Set(SignatureHeader, Sign([]byte(ep.Secret), s.opts.Now(), body))
	res, err := s.opts.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post: %w", err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // lets the connection be reused
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return res.StatusCode, fmt.Errorf("the receiver answered %s", res.Status)
	}
	return res.StatusCode, nil
}
