// Package videojob is the message contract between the producer and the
// videoencoder of the video-encoding sample: the producer builds and encodes
// Requests, one SQS message body each, and the videoencoder parses and
// validates them. A body is a JSON object:
//
//	{"id":"3b0c4f0e-8a8e-4c1e-9a61-2f6f7f3d0b52","video":"video-1.mp4","quality":"480p"}
//
// video and quality are required; quality is one of 480p, 720p, 1080p or 4k
// (in any letter case when parsed); id, the producer's request id, is optional
// so a hand-written `aws sqs send-message` body works too. Unknown fields are
// ignored.
//
// Keep both sides on this package: a change here changes what is on the wire.
package videojob

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Quality is the requested output resolution.
type Quality string

// The qualities of the seed's article ("480p, 720p, 1080p, 4K").
const (
	Q480p  Quality = "480p"
	Q720p  Quality = "720p"
	Q1080p Quality = "1080p"
	Q4K    Quality = "4k"
)

// Qualities lists every valid Quality, lowest first.
func Qualities() []Quality { return []Quality{Q480p, Q720p, Q1080p, Q4K} }

// ParseQuality accepts a quality in any letter case ("4K" is 4k) and returns
// its canonical spelling.
func ParseQuality(s string) (Quality, error) {
	for _, q := range Qualities() {
		if strings.EqualFold(s, string(q)) {
			return q, nil
		}
	}
	return "", fmt.Errorf("quality %q is not one of 480p, 720p, 1080p, 4k", s)
}

// Request is one message body:
//
//	{"id":"6f1c…","video":"video-1.mp4","quality":"1080p"}
type Request struct {
	ID      string  `json:"id"`
	Video   string  `json:"video"`
	Quality Quality `json:"quality"`
}

// ErrInvalid is wrapped by every ParseRequest error, and by Encode's for a
// request that is not valid: the body can never be processed, however often
// it is received.
var ErrInvalid = errors.New("invalid encoding request")

// ParseRequest decodes and validates a message body. The returned Quality is
// canonical (lower case).
func ParseRequest(body string) (Request, error) {
	if !strings.HasPrefix(strings.TrimSpace(body), "{") {
		return Request{}, fmt.Errorf("%w: body is not a JSON object", ErrInvalid)
	}
	var raw struct {
		ID      string `json:"id"`
		Video   string `json:"video"`
		Quality string `json:"quality"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		return Request{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if strings.TrimSpace(raw.Video) == "" {
		return Request{}, fmt.Errorf("%w: \"video\" is missing or empty", ErrInvalid)
	}
	q, err := ParseQuality(raw.Quality)
	if err != nil {
		return Request{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return Request{ID: raw.ID, Video: raw.Video, Quality: q}, nil
}

// New is the producer's request number i (from 0): video-<i+1>.mp4 at
// Qualities()[i%4], so every run of four covers each quality once (and
// QUALITY_SCALING=linear in the encoder shows a spread of encode times).
func New(i int, id string) Request {
	qualities := Qualities()
	return Request{
		ID:      id,
		Video:   fmt.Sprintf("video-%d.mp4", i+1),
		Quality: qualities[i%len(qualities)],
	}
}

// Encode returns r as a message body. A request without a video or whose
// Quality is not one of the constants (canonical spelling) is an error
// wrapping ErrInvalid, so a producer cannot enqueue a body the encoder would
// dead-letter.
func (r Request) Encode() (string, error) {
	if strings.TrimSpace(r.Video) == "" {
		return "", fmt.Errorf("%w: \"video\" is missing or empty", ErrInvalid)
	}
	if q, err := ParseQuality(string(r.Quality)); err != nil || q != r.Quality {
		return "", fmt.Errorf("%w: quality %q is not one of 480p, 720p, 1080p, 4k", ErrInvalid, r.Quality)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Build returns the bodies of n requests: New(i, newID()) for i from 0 to
// n-1, encoded (newID is uuid.NewString in the producer).
func Build(n int, newID func() string) ([]string, error) {
	bodies := make([]string, n)
	for i := range n {
		b, err := New(i, newID()).Encode()
		if err != nil {
			return nil, fmt.Errorf("encode request %d: %w", i, err)
		}
		bodies[i] = b
	}
	return bodies, nil
}
