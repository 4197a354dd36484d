// Package report tells the result analyzer how a job ended: POST
// /create/count when it processed its message, POST /create/kill when it was
// terminated mid-encode, each with a JSON jobreport.Report body.
package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/jobreport"
	"github.com/keda-eks-samples/workloads/pkg/wait"
)

// Client posts events. The zero BaseURL disables reporting: every call
// succeeds without sending anything.
type Client struct {
	BaseURL  string        // RESULT_ANALYZER_URL, e.g. http://result-analyzer:8080
	HTTP     *http.Client  // nil: a client with no overall timeout (Timeout bounds each attempt)
	Attempts int           // tries per event (default 5)
	Timeout  time.Duration // per attempt (default 3s)
	Backoff  time.Duration // before the 2nd attempt, doubled after (default 500ms: 7.5 s of waits in all, longer than a readiness blip of the analyzer's Service)
}

// Enabled reports whether events are sent anywhere.
func (c *Client) Enabled() bool { return c != nil && c.BaseURL != "" }

// Processed records a processed message (POST /create/count).
func (c *Client) Processed(ctx context.Context, e jobreport.Report) error {
	return c.post(ctx, jobreport.ProcessedPath, e)
}

// Killed records a job terminated mid-encode (POST /create/kill).
func (c *Client) Killed(ctx context.Context, e jobreport.Report) error {
	return c.post(ctx, jobreport.KilledPath, e)
}

// post sends e, retrying connection errors, 429 and 5xx answers up to
// Attempts times within ctx. A 4xx other than 429 is not retried: the same
// body would be refused again.
func (c *Client) post(ctx context.Context, path string, e jobreport.Report) error {
	if !c.Enabled() {
		return nil
	}
	e.Start, e.End = e.Start.UTC(), e.End.UTC()
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("report: encode event: %w", err)
	}
	url := strings.TrimRight(c.BaseURL, "/") + path
	attempts, timeout, backoff := c.Attempts, c.Timeout, c.Backoff
	if attempts < 1 {
		attempts = 5
	}
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	if backoff <= 0 {
		backoff = 500 * time.Millisecond
	}
	var errs []error
	for i := range attempts {
		if i > 0 {
			if err := wait.Sleep(ctx, backoff); err != nil {
				break
			}
			backoff *= 2
		}
		retry, err := c.once(ctx, url, body, timeout)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", i+1, err))
		if !retry {
			break
		}
	}
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return fmt.Errorf("report: POST %s: %w", url, errors.Join(errs...))
}

func (c *Client) once(ctx context.Context, url string, body []byte, timeout time.Duration) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	err = fmt.Errorf("status %s: %s", resp.Status, bytes.TrimSpace(msg))
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, err
}
