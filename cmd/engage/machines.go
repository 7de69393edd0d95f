package main

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/machines"
)

// startMachines starts machine labelling: the rules (the file's, watched for changes, else the
// built-in ones), the labeller's send-time cache and held relabels, and the prefetch sweep, all
// stopping with ctx; relabels wait, in a file beside the spool, while the recorder's spool holds
// events. It returns nil, labelling nothing, when the store cannot serve labels.
func startMachines(ctx context.Context, cfg config, store any, recorder *followed.Recorder, log *slog.Logger) (*followed.Labeller, error) {
	ls, ok := store.(followed.LabelStore)
	if !ok {
		log.Warn("machines: this store keeps no machine labels; every open and click counts as a person's")
		return nil, nil
	}
	classifier := machines.NewClassifier(nil, nil)
	if cfg.MachineRules != "" {
		go machines.Watch(ctx, cfg.MachineRules, 0, classifier, log)
	}
	backlog := func() bool {
		st := recorder.Stats()
		return st.Degraded || st.SpoolPending > 0
	}
	labels, err := followed.NewLabeller(classifier, ls, followed.LabellerOptions{Backlog: backlog,
		HeldPath: filepath.Join(cfg.DataDir, "relabels.held"), Log: log})
	if err != nil {
		return nil, err
	}
	go labels.Run(ctx)
	go followed.NewPrefetchSweep(ls, classifier, followed.PrefetchOptions{Log: log}).Run(ctx)
	return labels, nil
}
