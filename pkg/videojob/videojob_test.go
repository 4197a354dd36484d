package videojob

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Request
		ok   bool
	}{
		{"producer body", `{"id":"6f1c","video":"video-1.mp4","quality":"1080p"}`, Request{"6f1c", "video-1.mp4", Q1080p}, true},
		{"quality any case", `{"id":"a","video":"v.mp4","quality":"4K"}`, Request{"a", "v.mp4", Q4K}, true},
		{"id optional", ` {"video":"v.mp4","quality":"480p"} `, Request{"", "v.mp4", Q480p}, true},
		{"unknown fields ignored", `{"video":"v.mp4","quality":"720p","codec":"av1"}`, Request{"", "v.mp4", Q720p}, true},
		{"not json", `not json`, Request{}, false},
		{"a uuid (sqsworker's body)", `0b9a2a4e-4a8e-4b8e-9d1c-1f2a3b4c5d6e`, Request{}, false},
		{"json but not an object", `["video-1.mp4","720p"]`, Request{}, false},
		{"null", `null`, Request{}, false},
		{"truncated", `{"video":"v.mp4","quality":"720p"`, Request{}, false},
		{"trailing garbage", `{"video":"v.mp4","quality":"720p"} x`, Request{}, false},
		{"invalid quality", `{"video":"v.mp4","quality":"8k"}`, Request{}, false},
		{"missing quality", `{"video":"v.mp4"}`, Request{}, false},
		{"missing video", `{"quality":"720p"}`, Request{}, false},
		{"blank video", `{"video":"  ","quality":"720p"}`, Request{}, false},
		{"wrong type", `{"video":1,"quality":"720p"}`, Request{}, false},
		{"empty", ``, Request{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRequest(tt.body)
			if tt.ok != (err == nil) {
				t.Fatalf("ParseRequest(%q) error = %v, want ok=%v", tt.body, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if got != tt.want {
				t.Fatalf("ParseRequest(%q) = %+v, want %+v", tt.body, got, tt.want)
			}
		})
	}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		n    int
		want map[Quality]int // quality -> count
	}{
		{1, map[Quality]int{Q480p: 1}},
		{4, map[Quality]int{Q480p: 1, Q720p: 1, Q1080p: 1, Q4K: 1}},
		{10, map[Quality]int{Q480p: 3, Q720p: 3, Q1080p: 2, Q4K: 2}},
		{25, map[Quality]int{Q480p: 7, Q720p: 6, Q1080p: 6, Q4K: 6}},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.n), func(t *testing.T) {
			seq := 0
			bodies, err := Build(tt.n, func() string { seq++; return "id-" + strconv.Itoa(seq) })
			if err != nil {
				t.Fatal(err)
			}
			if len(bodies) != tt.n {
				t.Fatalf("%d bodies, want %d", len(bodies), tt.n)
			}
			got := map[Quality]int{}
			ids := map[string]bool{}
			for i, b := range bodies {
				var r Request
				dec := json.Unmarshal([]byte(b), &r)
				if dec != nil || r.Video != "video-"+strconv.Itoa(i+1)+".mp4" || r.ID == "" {
					t.Fatalf("body %d = %s (%v)", i, b, dec)
				}
				// The contract holds both ways: the encoder accepts every body.
				if p, err := ParseRequest(b); err != nil || p != r {
					t.Fatalf("ParseRequest(%s) = %+v, %v; want %+v", b, p, err, r)
				}
				ids[r.ID] = true
				got[r.Quality]++
			}
			if len(ids) != tt.n {
				t.Fatalf("%d distinct ids, want %d", len(ids), tt.n)
			}
			for q, c := range tt.want {
				if got[q] != c {
					t.Fatalf("quality counts %v, want %v", got, tt.want)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("quality counts %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		want string // "" means an error wrapping ErrInvalid
	}{
		{"producer request", New(0, "6f1c"), `{"id":"6f1c","video":"video-1.mp4","quality":"480p"}`},
		{"fourth quality", New(3, "x"), `{"id":"x","video":"video-4.mp4","quality":"4k"}`},
		{"wraps round", New(4, "x"), `{"id":"x","video":"video-5.mp4","quality":"480p"}`},
		{"id optional", Request{Video: "v.mp4", Quality: Q720p}, `{"id":"","video":"v.mp4","quality":"720p"}`},
		{"missing video", Request{ID: "a", Quality: Q720p}, ""},
		{"blank video", Request{Video: " ", Quality: Q720p}, ""},
		{"missing quality", Request{Video: "v.mp4"}, ""},
		{"invalid quality", Request{Video: "v.mp4", Quality: "8k"}, ""},
		{"non-canonical quality", Request{Video: "v.mp4", Quality: "4K"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.req.Encode()
			if tt.want == "" {
				if err == nil || !errors.Is(err, ErrInvalid) {
					t.Fatalf("Encode(%+v) = %q, %v; want an error wrapping ErrInvalid", tt.req, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Encode(%+v) = %q, %v; want %q", tt.req, got, err, tt.want)
			}
		})
	}
}

func TestParseQuality(t *testing.T) {
	tests := []struct {
		in   string
		want Quality
		ok   bool
	}{
		{"480p", Q480p, true},
		{"720P", Q720p, true},
		{"1080p", Q1080p, true},
		{"4K", Q4K, true},
		{"8k", "", false},
		{"", "", false},
		{" 4k", "", false},
	}
	for _, tt := range tests {
		got, err := ParseQuality(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseQuality(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
