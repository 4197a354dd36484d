package videojob_test

import (
	"errors"
	"fmt"

	"github.com/keda-eks-samples/workloads/pkg/videojob"
)

func Example() {
	// The producer side.
	body, err := videojob.New(2, "3b0c4f0e-8a8e-4c1e-9a61-2f6f7f3d0b52").Encode()
	if err != nil {
		panic(err)
	}
	fmt.Println(body)

	// The videoencoder side.
	req, err := videojob.ParseRequest(body)
	fmt.Println(req.Video, req.Quality, err)

	_, err = videojob.ParseRequest(`{"video":"video-1.mp4","quality":"8k"}`)
	fmt.Println(errors.Is(err, videojob.ErrInvalid), err)
	// Output:
	// {"id":"3b0c4f0e-8a8e-4c1e-9a61-2f6f7f3d0b52","video":"video-3.mp4","quality":"1080p"}
	// video-3.mp4 1080p <nil>
	// true invalid encoding request: quality "8k" is not one of 480p, 720p, 1080p, 4k
}
