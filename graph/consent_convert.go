package graph

import (
	"sort"

	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph/model"
)

func engagementSettings(s consent.Settings) *model.EngagementSettings {
	return &model.EngagementSettings{Enabled: s.Enabled, TrackOpens: s.TrackOpens, TrackLinks: s.TrackLinks,
		TrackAttachments: s.TrackAttachments, AttachmentSharing: model.AttachmentSharing(s.AttachmentSharing),
		RetentionDays: s.RetentionDays, IPStorage: model.IPStorage(s.IPStorage), RequireConsent: s.RequireConsent}
}

func settingsChange(in model.EngagementSettingsInput) consent.SettingsChange {
	c := consent.SettingsChange{Enabled: in.Enabled, TrackOpens: in.TrackOpens, TrackLinks: in.TrackLinks,
		TrackAttachments: in.TrackAttachments, RetentionDays: in.RetentionDays, RequireConsent: in.RequireConsent}
	if in.AttachmentSharing != nil {
		v := consent.AttachmentSharing(*in.AttachmentSharing)
		c.AttachmentSharing = &v
	}
	if in.IPStorage != nil {
		v := followed.IPStorage(*in.IPStorage)
		c.IPStorage = &v
	}
	return c
}

func preferenceEntry(e consent.Entry) *model.FollowPreferenceEntry {
	return &model.FollowPreferenceEntry{Target: e.Target, Preference: model.FollowPreference(e.Preference), At: e.At,
		By: e.By, Source: e.Source, Note: ptrIf(e.Note)}
}

func followability(f consent.Followability) *model.Followability {
	out := &model.Followability{Allowed: append([]string{}, f.Allowed...), Blocked: []*model.BlockedRecipient{}}
	for _, b := range f.Blocked {
		out.Blocked = append(out.Blocked, &model.BlockedRecipient{Email: b.Email, Reason: model.BlockReason(b.Reason)})
	}
	return out
}

func auditConnection(p consent.AuditPage) *model.AuditLogConnection {
	conn := &model.AuditLogConnection{Edges: []*model.AuditEdge{}, PageInfo: &model.PageInfo{HasNextPage: p.HasNext}}
	for i, a := range p.Entries {
		conn.Edges = append(conn.Edges, &model.AuditEdge{Cursor: p.Cursors[i], Node: &model.AuditEntry{At: a.At,
			Actor: a.Actor, Action: a.Action, Target: a.Target, Before: a.Before, After: a.After}})
	}
	if n := len(p.Cursors); n > 0 {
		conn.PageInfo.EndCursor = &p.Cursors[n-1]
	}
	return conn
}

func erasure(e consent.Erasure) *model.Erasure {
	out := &model.Erasure{Email: e.Email, Counts: []*model.ErasedCount{}}
	for _, c := range e.Counts {
		out.Counts = append(out.Counts, &model.ErasedCount{What: c.What, Count: c.N})
	}
	return out
}

func recipientData(email string, rs []consent.Record) *model.RecipientData {
	out := &model.RecipientData{Email: email, Records: []*model.DataRecord{}}
	for _, r := range rs {
		d := &model.DataRecord{Source: r.Source, Kind: r.Kind, ID: r.ID, At: timePtr(r.At), Fields: []*model.DataField{}}
		for name, v := range r.Fields {
			if v != "" {
				d.Fields = append(d.Fields, &model.DataField{Name: name, Value: v})
			}
		}
		sort.Slice(d.Fields, func(i, j int) bool { return d.Fields[i].Name < d.Fields[j].Name })
		out.Records = append(out.Records, d)
	}
	return out
}
