// Package weather is the sample workload of the HTTP autoscaling variants: a
// forecast endpoint whose random latency makes concurrent (active) requests
// pile up under load, the signal KEDA scales on.
package weather

import (
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/httpx"
	"github.com/keda-eks-samples/workloads/pkg/wait"
)

// Summaries are the original sample's ten descriptions, in its order.
var Summaries = [...]string{
	"Freezing", "Bracing", "Chilly", "Cool", "Mild", "Warm", "Balmy", "Hot", "Sweltering", "Scorching",
}

// Days is how many forecasts one response holds.
const Days = 5

// Forecast is one day; field names match the ASP.NET sample's JSON.
type Forecast struct {
	Date         string `json:"date"`
	TemperatureC int    `json:"temperatureC"`
	TemperatureF int    `json:"temperatureF"`
	Summary      string `json:"summary"`
}

// Fahrenheit is the seed's formula, integer truncation included.
func Fahrenheit(c int) int { return 32 + int(float64(c)/0.5556) }

// Forecasts returns the next Days days after now. Temperatures are uniform in
// [-20, 55), as Random.Shared.Next(-20, 55) was in the seed.
func Forecasts(now time.Time) []Forecast {
	out := make([]Forecast, Days)
	for i := range out {
		c := rand.IntN(75) - 20
		out[i] = Forecast{
			Date:         now.AddDate(0, 0, i+1).Format(time.DateOnly),
			TemperatureC: c,
			TemperatureF: Fahrenheit(c),
			Summary:      Summaries[rand.IntN(len(Summaries))],
		}
	}
	return out
}

// Handler serves GET /weatherforecast: wait a random delay in [minDelay,
// maxDelay], then answer. A client that leaves during the wait gets nothing
// and frees its slot at once.
func Handler(log *slog.Logger, minDelay, maxDelay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := wait.Uniform(minDelay, maxDelay)
		log.DebugContext(r.Context(), "forecast requested", "delay", d)
		if wait.Sleep(r.Context(), d) != nil {
			return
		}
		log.DebugContext(r.Context(), "forecast served", "delay", d)
		httpx.WriteJSON(w, http.StatusOK, Forecasts(time.Now()))
	})
}
