package sqstest

import (
	"bufio"
	"bytes"
	"encoding/json"
)

// ProcessedIDs counts, by message id, the "processed" records in sqsworker
// JSON logs (LOG_LEVEL=debug): how many times each message was processed.
func ProcessedIDs(logs ...[]byte) map[string]int {
	seen := map[string]int{}
	for _, log := range logs {
		sc := bufio.NewScanner(bytes.NewReader(log))
		for sc.Scan() {
			var rec struct {
				Msg       string `json:"msg"`
				MessageID string `json:"message_id"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "processed" {
				seen[rec.MessageID]++
			}
		}
	}
	return seen
}

// Tally compares the ids sent with how often each was processed: how many
// never were, and how many extra times the others were (duplicates).
func Tally(ids []string, processed map[string]int) (missing, duplicates int) {
	for _, id := range ids {
		switch n := processed[id]; {
		case n == 0:
			missing++
		case n > 1:
			duplicates += n - 1
		}
	}
	return missing, duplicates
}
