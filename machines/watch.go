package machines

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"time"
)

// defaultWatchEvery is the polling interval Watch uses when given none.
const defaultWatchEvery = 30 * time.Second

// fileState is what Watch compares between polls to notice an edited, added or removed file.
type fileState struct {
	exists  bool
	modTime int64 // UnixNano
	size    int64
	statErr string
}

func statFile(path string) fileState {
	st, err := os.Stat(path)
	switch {
	case err == nil:
		return fileState{exists: true, modTime: st.ModTime().UnixNano(), size: st.Size()}
	case errors.Is(err, fs.ErrNotExist):
		return fileState{}
	default:
		return fileState{statErr: err.Error()}
	}
}

// Watch loads the rules file at path into c now and again whenever its modification time or
// size changes, polling every interval (30s when every <= 0) until ctx is done. A missing or
// malformed file puts the built-in defaults in force, with one log line per change of the file.
// It blocks; run it in its own goroutine.
func Watch(ctx context.Context, path string, every time.Duration, c *Classifier, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	if every <= 0 {
		every = defaultWatchEvery
	}
	last := statFile(path)
	load(path, c, log)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cur := statFile(path)
			if cur == last {
				continue
			}
			last = cur
			load(path, c, log)
		}
	}
}

// load puts the file's rules in force, or the defaults when it is unusable.
func load(path string, c *Classifier, log *slog.Logger) {
	r, err := ReadRulesFile(path)
	if err != nil {
		c.SetRules(DefaultRules())
		log.Warn("machines: rules file unusable, using built-in defaults", "path", path, "err", err)
		return
	}
	c.SetRules(r)
	log.Info("machines: rules loaded", "path", path, "rules", r.Len())
}
