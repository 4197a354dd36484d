package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keda-eks-samples/workloads/pkg/testutil/sqstest"
)

// BenchmarkProduce1000 enqueues 1000 encoding requests: "batched" is the
// producer's run (SendMessageBatch, SEND_CONCURRENCY calls in flight),
// "sequential" a plain SendMessage loop, as the seed's per-message send did.
// `make bench` prints sequential ÷ batched (goal ≥ 5×).
func BenchmarkProduce1000(b *testing.B) {
	const n = 1000
	emu := sqstest.Start(b)
	b.Run("sequential", func(b *testing.B) {
		q := emu.NewQueue(b)
		client := emu.Client(b)
		for b.Loop() {
			for i := range n {
				body := fmt.Sprintf(`{"id":"%08d-0000-4000-8000-000000000000","video":"video-%d.mp4","quality":"720p"}`, i, i+1)
				if _, err := client.SendMessage(context.Background(), &sqs.SendMessageInput{
					QueueUrl: aws.String(q.URL), MessageBody: aws.String(body)}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("batched", func(b *testing.B) {
		q := emu.NewQueue(b)
		getenv := emu.Getenv(map[string]string{"QUEUE_URL": q.URL, "NUM_MESSAGES": strconv.Itoa(n), "LOG_LEVEL": "error"})
		for b.Loop() {
			if err := run(context.Background(), getenv, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
}
