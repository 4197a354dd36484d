// Package api holds the result analyzer's JSON handlers: the two endpoints
// jobs report to, the seed's list of lines, and the structured views.
package api

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/keda-eks-samples/workloads/pkg/httpx"
	"github.com/keda-eks-samples/workloads/pkg/jobreport"
	"github.com/keda-eks-samples/workloads/services/resultanalyzer/internal/events"
)

// Record serves POST /create/count (kind processed) and /create/kill (kind
// killed): it stores the event and answers 200 with it. Bad input is a 4xx
// and records nothing.
func Record(store *events.Store, kind events.Kind, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep, err := readReport(r)
		if err != nil {
			httpx.WriteError(w, err)
			return
		}
		e, err := store.Record(r.Context(), events.Event{
			Kind: kind, JobID: rep.JobID, MessageID: rep.MessageID,
			Start: rep.Start, End: rep.End, Outcome: rep.Outcome, Detail: rep.Detail,
		})
		var invalid *events.ValidationError
		switch {
		case errors.As(err, &invalid):
			httpx.Error(w, http.StatusBadRequest, invalid.Error())
			return
		case err != nil:
			log.Error("record event", "kind", kind, "err", err)
			httpx.Error(w, http.StatusInternalServerError, "could not record the event")
			return
		}
		log.Info("event recorded", "seq", e.Seq, "kind", e.Kind, "count", e.Count,
			"job_id", e.JobID, "message_id", e.MessageID, "outcome", e.Outcome)
		httpx.WriteJSON(w, http.StatusOK, e)
	})
}

// readReport reads the optional jobreport.Report body: empty (or only
// whitespace) is the seed's bare POST, which records an event with only the
// time it arrived. Field names match case-insensitively; times are RFC 3339.
func readReport(r *http.Request) (jobreport.Report, error) {
	var rep jobreport.Report
	_, err := httpx.DecodeOptionalJSON(r, &rep)
	return rep, err
}

// SeedLines serves GET /get/count exactly as the seed did: a JSON array of
// "YYYY-MM-DD HH:MM:SS - processed count N" / "... - kill count N" strings
// (UTC), in recording order.
func SeedLines(store *events.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		evs := store.List()
		lines := make([]string, len(evs))
		for i, e := range evs {
			lines[i] = e.SeedLine()
		}
		httpx.WriteJSON(w, http.StatusOK, lines)
	})
}

// List serves GET /events: every event, in recording order.
func List(store *events.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, store.List())
	})
}

// Summary serves GET /summary: counts, duplicates, peak concurrency and the
// concurrency series.
func Summary(store *events.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, store.Summary())
	})
}
