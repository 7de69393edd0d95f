package graph

import (
	"github.com/engage-email/engage/graph/model"
	"github.com/engage-email/engage/recommend"
)

func templateInput(in model.TemplateInput) recommend.TemplateInput {
	return recommend.TemplateInput{Name: in.Name, Subject: deref(in.Subject), HTML: in.HTML, Category: in.Category}
}

func template(t recommend.Template) *model.Template {
	return &model.Template{ID: t.ID, Owner: t.Owner, Name: t.Name, Subject: t.Subject, HTML: t.HTML,
		Category: t.Category, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

func sendTimeSlots(slots []recommend.Slot) []*model.SendTimeSlot {
	out := make([]*model.SendTimeSlot, len(slots))
	for i, s := range slots {
		out[i] = &model.SendTimeSlot{At: s.At, Score: s.Score, Explanation: s.Explanation, Exploring: s.Exploring}
	}
	return out
}

func rate(r recommend.Rate) *model.Rate {
	return &model.Rate{Mean: r.Mean, Low: r.Low, High: r.High, N: r.N}
}

func templateRecommendations(ranked []recommend.RankedTemplate) []*model.TemplateRecommendation {
	out := make([]*model.TemplateRecommendation, len(ranked))
	for i, r := range ranked {
		out[i] = &model.TemplateRecommendation{
			Template: template(r.Template), Emails: r.Emails,
			OpenRate: rate(r.OpenRate), ReplyRate: rate(r.ReplyRate), WinRate: rate(r.WinRate),
			Recommended: r.Recommended, Why: r.Why,
		}
	}
	return out
}
