package main

import (
	"io"
	"net/http"
)

// probe is a GET that tolerates a refused connection (code 0).
func probe(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
