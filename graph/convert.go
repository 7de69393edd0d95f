package graph

import (
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph/model"
)

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func ptrIf[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func followInput(in model.FollowMessageInput) followed.FollowInput {
	out := followed.FollowInput{
		Subject:    in.Subject,
		HTML:       deref(in.HTML),
		Text:       deref(in.Text),
		Individual: deref(in.Individual),
		Follow:     in.Follow == nil || *in.Follow,
		TemplateID: deref(in.TemplateID),
	}
	for _, r := range in.Recipients {
		kind := followed.KindTo
		if r.Kind != nil {
			kind = followed.RecipientKind(*r.Kind)
		}
		out.Recipients = append(out.Recipients, followed.Recipient{Email: r.Email, Name: deref(r.Name), Kind: kind})
	}
	return out
}

func recipient(r followed.Recipient) *model.Recipient {
	return &model.Recipient{Email: r.Email, Name: ptrIf(r.Name), Kind: model.RecipientKind(r.Kind)}
}

func followedMessage(m followed.Message) *model.FollowedMessage {
	out := &model.FollowedMessage{
		ID:                m.ID,
		Subject:           m.Subject,
		Owner:             m.Owner,
		CreatedAt:         m.CreatedAt,
		Following:         m.Following,
		NotFollowedReason: ptrIf(m.NotFollowedReason),
		Individual:        m.Individual,
		TemplateID:        ptrIf(m.TemplateID),
		Recipients:        []*model.Recipient{},
		Warnings:          append([]string{}, m.Warnings...),
		Links:             []*model.LinkStats{},
	}
	for _, r := range m.Recipients {
		out.Recipients = append(out.Recipients, recipient(r))
	}
	if m.Renders != nil {
		out.Renders = renders(m)
	}
	c := m.Counters
	out.Kpis = &model.MessageKPIs{Opens: c.Opens, UniqueOpens: c.UniqueOpens, FirstOpenedAt: timePtr(c.FirstOpenedAt),
		LastOpenedAt: timePtr(c.LastOpenedAt), Clicks: c.Clicks, UniqueClicks: c.UniqueClicks,
		AttachmentOpens: c.AttachmentOpens, Replies: c.Replies, MachineOpens: c.MachineOpens, MachineClicks: c.MachineClicks}
	for _, l := range m.Links {
		out.Links = append(out.Links, &model.LinkStats{Index: l.Index, URL: l.URL, Clicks: l.Clicks,
			UniqueClicks: l.UniqueClicks, ClickThroughRate: l.ClickThroughRate(c.UniqueClicks)})
	}
	return out
}

func renders(m followed.Message) []*model.Render {
	out := []*model.Render{}
	for _, r := range m.Renders {
		mr := &model.Render{HTML: r.HTML, Tracked: r.Tracked, Recipients: []*model.Recipient{}}
		for _, t := range r.Targets {
			if t >= 0 && t < len(m.Recipients) {
				mr.Recipients = append(mr.Recipients, recipient(m.Recipients[t]))
			}
		}
		out = append(out, mr)
	}
	return out
}

func interactionConnection(p followed.EventPage, recipients []*model.Recipient) *model.InteractionConnection {
	conn := &model.InteractionConnection{Edges: []*model.InteractionEdge{}, PageInfo: &model.PageInfo{HasNextPage: p.HasNext}}
	for i, e := range p.Events {
		in := &model.Interaction{
			ID:            e.ID,
			Kind:          model.InteractionKind(e.Kind),
			At:            e.At,
			URL:           ptrIf(e.URL),
			Device:        &model.Device{Type: model.DeviceType(e.Device.Type), Os: e.Device.OS, Client: e.Device.Client},
			IPAddress:     ptrIf(e.IP),
			UserAgent:     ptrIf(e.UserAgent),
			Machine:       e.Machine,
			MachineReason: ptrIf(e.Reason),
			MachineRule:   ptrIf(e.Rule),
		}
		if in.Device.Type == "" {
			in.Device.Type = model.DeviceTypeUnknown
		}
		if e.Link >= 0 {
			link := e.Link
			in.LinkIndex = &link
		}
		if e.Recipient >= 0 && e.Recipient < len(recipients) {
			in.Recipient = recipients[e.Recipient]
		}
		conn.Edges = append(conn.Edges, &model.InteractionEdge{Cursor: p.Cursors[i], Node: in})
	}
	if n := len(p.Cursors); n > 0 {
		conn.PageInfo.EndCursor = &p.Cursors[n-1]
	}
	return conn
}
