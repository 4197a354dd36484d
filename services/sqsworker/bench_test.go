package main

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keda-eks-samples/workloads/pkg/sqsx"
	"github.com/keda-eks-samples/workloads/pkg/testutil/sqstest"
	"github.com/keda-eks-samples/workloads/services/sqsworker/internal/worker"
)

// benchMessages is the batch each benchmark iteration moves end to end.
const benchMessages = 200

// opCounter counts SQS calls by operation (sqsx.CountCalls).
type opCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *opCounter) count(op string) { c.mu.Lock(); c.n[op]++; c.mu.Unlock() }

// report reports calls per message, in total and by operation, and resets.
func (c *opCounter) report(b *testing.B, messages int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for op, n := range c.n {
		total += n
		b.ReportMetric(float64(n)/float64(messages), op+"/msg")
	}
	b.ReportMetric(float64(total)/float64(messages), "calls/msg")
	c.n = map[string]int{}
}

func (c *opCounter) reset() { c.mu.Lock(); c.n = map[string]int{}; c.mu.Unlock() }

func benchClient(b *testing.B, emu *sqstest.Emulator, c *opCounter) *sqs.Client {
	client, err := sqsx.NewClient(context.Background(), emu.Getenv(nil), sqsx.CountCalls(c.count))
	if err != nil {
		b.Fatal(err)
	}
	return client
}

func bodies(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "message-" + strconv.Itoa(i)
	}
	return out
}

// deleteWatch wraps the SQS API to signal the moment n messages have been
// deleted: drain completion measured exactly, not by polling queue depth.
type deleteWatch struct {
	sqsx.API
	mu      sync.Mutex
	deleted int
	target  int
	reached chan struct{}
}

func (d *deleteWatch) expect(n int) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deleted, d.target, d.reached = 0, n, make(chan struct{})
	return d.reached
}

func (d *deleteWatch) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	out, err := d.API.DeleteMessageBatch(ctx, in, opts...)
	if err == nil {
		d.mu.Lock()
		before := d.deleted
		d.deleted += len(out.Successful)
		if before < d.target && d.deleted >= d.target {
			close(d.reached)
		}
		d.mu.Unlock()
	}
	return out, err
}

// drainWithWorker starts the real worker (service defaults, zero work
// delay) on a filled queue of n messages, waits until all n are deleted and
// stops the worker; the stop is not timed.
func drainWithWorker(b *testing.B, api sqsx.API, queueURL string, n int) {
	watch := &deleteWatch{API: api}
	drained := watch.expect(n)
	w := worker.New(worker.Config{QueueURL: queueURL, Concurrency: 10, WaitTime: time.Second,
		VisibilityTimeout: 30 * time.Second, DeleteFlush: time.Second, MaxBackoff: time.Second},
		watch, worker.SimulatedWork(0, 0), nopMetrics{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, 10*time.Second) }()
	select {
	case <-drained:
	case <-time.After(time.Minute):
		b.Fatalf("worker did not delete %d messages within a minute", n)
	}
	b.StopTimer()
	cancel()
	<-done
	b.StartTimer()
}

// seedProduceAndDrain is the seed's algorithm, as a baseline: one
// SendMessage per message (Program.cs /send), then receive up to 10 with a
// 5s... here 1s wait, and one DeleteMessage per message.
func seedProduceAndDrain(b *testing.B, client *sqs.Client, queueURL string, n int) {
	ctx := context.Background()
	for _, body := range bodies(n) {
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(body)}); err != nil {
			b.Fatal(err)
		}
	}
	for done := 0; done < n; {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range out.Messages {
			if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				b.Fatal(err)
			}
			done++
		}
	}
}

// BenchmarkSQSCallsPerMessage counts SQS API calls per message moved end to
// end (produce + receive + delete): ours (SendMessageBatch, the worker's
// receive of up to 10, DeleteMessageBatch) against the seed's per-message
// SendMessage / DeleteMessage. Full batches give 0.3; the seed gives 2.1.
func BenchmarkSQSCallsPerMessage(b *testing.B) {
	emu := sqstest.Start(b)
	c := &opCounter{n: map[string]int{}}
	client := benchClient(b, emu, c)
	b.Run("seed", func(b *testing.B) {
		q := emu.NewQueue(b)
		c.reset()
		for b.Loop() {
			seedProduceAndDrain(b, client, q.URL, benchMessages)
		}
		c.report(b, b.N*benchMessages)
	})
	b.Run("ours", func(b *testing.B) {
		q := emu.NewQueue(b)
		c.reset()
		for b.Loop() {
			if _, err := sqsx.Send(context.Background(), client, q.URL, bodies(benchMessages), 8); err != nil {
				b.Fatal(err)
			}
			drainWithWorker(b, client, q.URL, benchMessages)
		}
		c.report(b, b.N*benchMessages)
	})
}

// BenchmarkDrain compares the worker's drain rate (zero work delay) with the
// emulator's raw batch loop: receive 10, DeleteMessageBatch, repeat.
func BenchmarkDrain(b *testing.B) {
	emu := sqstest.Start(b)
	client := emu.Client(b)
	fill := func(b *testing.B, url string) {
		b.StopTimer()
		if _, err := sqsx.Send(context.Background(), client, url, bodies(benchMessages), 8); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.Run("raw", func(b *testing.B) {
		q := emu.NewQueue(b)
		for b.Loop() {
			fill(b, q.URL)
			for done := 0; done < benchMessages; {
				out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
				if err != nil {
					b.Fatal(err)
				}
				handles := make([]string, len(out.Messages))
				for i, m := range out.Messages {
					handles[i] = aws.ToString(m.ReceiptHandle)
				}
				if _, err := sqsx.Delete(context.Background(), client, q.URL, handles); err != nil {
					b.Fatal(err)
				}
				done += len(handles)
			}
		}
		b.ReportMetric(float64(b.N*benchMessages)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("worker", func(b *testing.B) {
		q := emu.NewQueue(b)
		for b.Loop() {
			fill(b, q.URL)
			drainWithWorker(b, client, q.URL, benchMessages)
		}
		b.ReportMetric(float64(b.N*benchMessages)/b.Elapsed().Seconds(), "msgs/s")
	})
}

type nopMetrics struct{}

func (nopMetrics) Processed(context.Context, time.Duration) {}
func (nopMetrics) Failed(context.Context)                   {}
func (nopMetrics) InFlight(context.Context, int64)          {}
