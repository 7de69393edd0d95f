package graph

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/engage-email/engage/delivery"
)

// memo keeps what several fields of one query read from one place: a message's status, sendError,
// sentAt and scheduledAt come from one read of its send job, not four.
type memo struct {
	mu   sync.Mutex
	jobs map[string]*memoJob
}

type memoJob struct {
	once sync.Once
	job  delivery.Job
	err  error
}

type memoKey struct{}

// Memo is a gqlgen operation middleware that gives each query its memo. Mutations get none: a
// mutation's result must show what it just changed, even when an earlier field of the same operation
// read the same message before the change.
func Memo(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if oc := graphql.GetOperationContext(ctx); oc != nil && oc.Operation != nil && oc.Operation.Operation == ast.Query {
		ctx = context.WithValue(ctx, memoKey{}, &memo{jobs: map[string]*memoJob{}})
	}
	return next(ctx)
}

// memoizedJob reads a message's send job once per query, through load.
func memoizedJob(ctx context.Context, id string, load func() (delivery.Job, error)) (delivery.Job, error) {
	m, _ := ctx.Value(memoKey{}).(*memo)
	if m == nil {
		return load()
	}
	m.mu.Lock()
	e := m.jobs[id]
	if e == nil {
		e = &memoJob{}
		m.jobs[id] = e
	}
	m.mu.Unlock()
	e.once.Do(func() { e.job, e.err = load() })
	return e.job, e.err
}
