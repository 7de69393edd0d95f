// Package followed holds followed messages: their tracked renders (rewritten links, pixel, honeypot),
// the signed tokens that let tracking URLs work without a store read, the devices opens come from,
// and the events, history and KPIs built from them.
package followed
