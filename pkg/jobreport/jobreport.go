// Package jobreport is the contract between the jobs and the result
// analyzer: what a job POSTs when it has processed its message or was
// killed mid-work. The seed's job sent an empty POST; the body is optional
// for the analyzer and carries the fields it draws its timeline from:
//
//	POST /create/count
//	{"jobId":"video-processor-x7k2p","messageId":"5fe1…","start":"2024-01-17T05:50:15Z",
//	 "end":"2024-01-17T05:50:45Z","outcome":"processed","detail":"video=video-1.mp4 quality=4k"}
package jobreport

import "time"

// The result analyzer's endpoints, as the seed named them.
const (
	ProcessedPath = "/create/count"
	KilledPath    = "/create/kill"
)

// Outcomes a job reports.
const (
	OutcomeProcessed = "processed"
	OutcomeKilled    = "killed"
)

// Report is the JSON body of both endpoints. Times are RFC 3339 (UTC with
// nanoseconds when a job sends them); every field is optional.
type Report struct {
	JobID     string    `json:"jobId"`
	MessageID string    `json:"messageId"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Outcome   string    `json:"outcome"`
	Detail    string    `json:"detail,omitempty"`
}
