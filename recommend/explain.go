package recommend

import (
	"fmt"
	"strings"
	"time"
)

// maxNamed is how many recipients an explanation names before it summarises.
const maxNamed = 3

func localTime(at time.Time, h *habit) string {
	return at.In(h.zone).Format("Mon 15:04") + " " + zoneName(h)
}

func zoneName(h *habit) string {
	name := h.zone.String()
	switch h.source {
	case SourceMailbox:
		return name + " (mailbox settings)"
	case SourceProfile:
		return name + " (profile)"
	case SourceInferred:
		return name + " (inferred)"
	case SourceDomain:
		return name + " (colleagues' zone)"
	default:
		return name + " (your zone)"
	}
}

// evidence says what a recipient's estimate rests on.
func evidence(h *habit) string {
	switch {
	case h.engaged >= 1:
		return fmt.Sprintf("from %.0f engagements", h.engaged)
	case h.borrowed != "":
		return "no history yet, like " + h.borrowed
	default:
		return "no history yet"
	}
}

// explainModel is the one line shown with a learned slot.
func explainModel(at time.Time, habits []habit, scores []week, exploring bool) string {
	var b strings.Builder
	if exploring {
		b.WriteString("Exploring a less certain hour: ")
	}
	if len(habits) == 1 {
		h := &habits[0]
		v := scores[0][readingHour(at, h.zone)]
		fmt.Fprintf(&b, "%s: %s reads soon after this hour %.1fx as often as average (%s)",
			localTime(at, h), h.recipient, v, evidence(h))
		return b.String()
	}
	good := 0
	for r := range habits {
		if scores[r][readingHour(at, habits[r].zone)] >= 1 {
			good++
		}
	}
	fmt.Fprintf(&b, "Good for %d of %d recipients", good, len(habits))
	if len(habits) > maxNamed {
		best := 0
		for r := range habits {
			if scores[r][readingHour(at, habits[r].zone)] > scores[best][readingHour(at, habits[best].zone)] {
				best = r
			}
		}
		fmt.Fprintf(&b, "; best for %s at %s", habits[best].recipient, localTime(at, &habits[best]))
		return b.String()
	}
	b.WriteString(": ")
	for r := range habits {
		if r > 0 {
			b.WriteString(", ")
		}
		h := &habits[r]
		fmt.Fprintf(&b, "%s %s %.1fx (%s)", h.recipient, localTime(at, h), scores[r][readingHour(at, h.zone)], evidence(h))
	}
	return b.String()
}

// explainRule is the one line shown with a cold-start slot.
func explainRule(at time.Time, habits []habit, hit int) string {
	if len(habits) == 1 {
		return fmt.Sprintf("%s: working hours (Mon-Fri 08:00-17:00) in the recipient's zone; no engagement history yet",
			localTime(at, &habits[0]))
	}
	if len(habits) > maxNamed {
		return fmt.Sprintf("Working hours (Mon-Fri 08:00-17:00) for %d of %d recipients in their zones; no engagement history yet",
			hit, len(habits))
	}
	parts := make([]string, len(habits))
	for r := range habits {
		parts[r] = habits[r].recipient + " " + localTime(at, &habits[r])
	}
	return fmt.Sprintf("Working hours (Mon-Fri 08:00-17:00) for %d of %d recipients (%s); no engagement history yet",
		hit, len(habits), strings.Join(parts, ", "))
}
