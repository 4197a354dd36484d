// Package api is the HTTP surface of sqsworker beyond the probes: the seed's
// POST /send helper that fills the queue so KEDA has something to scale on.
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/keda-eks-samples/workloads/pkg/httpx"
	"github.com/keda-eks-samples/workloads/pkg/sqsx"
)

// MaxSend bounds one /send request.
const MaxSend = 10000

// SendRequest is the seed's body, {"Messages": N}; the field name matches
// case-insensitively, as ASP.NET model binding did.
type SendRequest struct {
	Messages *int `json:"Messages"`
}

// SendResponse reports what was enqueued.
type SendResponse struct {
	Requested int `json:"requested"`
	Sent      int `json:"sent"`
	Failed    int `json:"failed"`
	Calls     int `json:"calls"`
}

// Sender enqueues message bodies (sqsx.Send bound to a queue).
type Sender func(ctx context.Context, bodies []string) (sqsx.SendResult, error)

// Send handles POST /send: N random UUID bodies, sent with SendMessageBatch.
// Bad input is a 400 and enqueues nothing; a partial failure is a 502 that
// says how many made it.
func Send(log *slog.Logger, send Sender) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req SendRequest
		if err := httpx.DecodeJSON(r, &req); err != nil {
			httpx.WriteError(w, err)
			return
		}
		if req.Messages == nil || *req.Messages < 1 || *req.Messages > MaxSend {
			httpx.Error(w, http.StatusBadRequest, fmt.Sprintf(`"Messages" must be an integer from 1 to %d`, MaxSend))
			return
		}
		n := *req.Messages
		bodies := make([]string, n)
		for i := range bodies {
			bodies[i] = uuid.NewString()
		}
		res, err := send(r.Context(), bodies)
		out := SendResponse{Requested: n, Sent: res.Sent(), Failed: n - res.Sent(), Calls: res.Calls}
		if err != nil {
			log.ErrorContext(r.Context(), "send failed", "requested", n, "sent", out.Sent, "err", err)
			httpx.WriteJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error(), "result": out})
			return
		}
		log.InfoContext(r.Context(), "messages sent", "count", n, "calls", res.Calls)
		httpx.WriteJSON(w, http.StatusOK, out)
	})
}
