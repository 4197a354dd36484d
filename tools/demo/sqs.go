package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/sqsx"
)

// emulator is the local SQS (fauxqs, see tools/fauxqs) and a client for it.
type emulator struct {
	env    map[string]string // AWS_* for the services
	client *sqs.Client
	calls  counter // the demo's own calls (playing KEDA), by operation
}

// startEmulator runs tools/fauxqs/serve.mjs on a free loopback port.
func startEmulator(ctx context.Context, st *stack, repo string) (*emulator, error) {
	ports, err := localproc.FreePorts(1)
	if err != nil {
		return nil, err
	}
	port := ports[0]
	cmd := exec.Command("node", "serve.mjs", "--port", strconv.Itoa(port))
	cmd.Dir = filepath.Join(repo, "tools", "fauxqs")
	p, err := st.startCmd("fauxqs", cmd, nil)
	if err != nil {
		return nil, err
	}
	p.backing = true // the workers hand their messages back to it when stopped
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := localproc.WaitOK(ctx, nil, endpoint+"/health", 30*time.Second, p.Done()); err != nil {
		return nil, fmt.Errorf("SQS emulator: %w (see %s/fauxqs.log)", err, st.logs)
	}
	fmt.Fprintf(st.out, "started %-15s %s (SQS emulator)\n", "fauxqs", endpoint)
	env := map[string]string{
		"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_SQS": endpoint,
		"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
	}
	e := &emulator{env: env}
	e.client, err = sqsx.NewClient(ctx, func(k string) string { return env[k] }, sqsx.CountCalls(e.calls.add))
	if err != nil {
		return nil, err
	}
	return e, nil
}

// createQueue makes name and name-dlq, with a redrive policy after
// maxReceive receives, and returns the queue URL.
func (e *emulator) createQueue(ctx context.Context, name string, maxReceive int) (string, error) {
	dlq, err := e.client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		return "", err
	}
	attrs, err := e.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: dlq.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", err
	}
	policy, _ := json.Marshal(map[string]any{"deadLetterTargetArn": attrs.Attributes["QueueArn"], "maxReceiveCount": maxReceive})
	q, err := e.client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name),
		Attributes: map[string]string{"RedrivePolicy": string(policy), "VisibilityTimeout": "30"}})
	if err != nil {
		return "", err
	}
	return aws.ToString(q.QueueUrl), nil
}

// depth is what KEDA's aws-sqs-queue trigger reads: visible and in flight.
func (e *emulator) depth(ctx context.Context, url string) (visible, inFlight int, err error) {
	out, err := e.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		return 0, 0, err
	}
	visible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible, inFlight, nil
}

// sqsWorkerScene is seed 004: POST /send fills the queue and sqsworker
// replicas drain it. The demo plays KEDA's part: every second it sets the
// replica count to ceil((visible + in flight) / queueLength), between 1 and
// maxReplicas, starting workers or sending SIGTERM to the newest.
// The workers reach the emulator through a proxy that counts their calls
// (what SQS would bill them), and the demo counts its own
// GetQueueAttributes (KEDA's, once a poll): both go into the cost table.
func sqsWorkerScene(ctx context.Context, st *stack, emu *emulator, messages int, m *measured) error {
	const queueLength, maxReplicas = 5, 6
	url, err := emu.createQueue(ctx, "demo-sqsworker", 5)
	if err != nil {
		return err
	}
	proxy, err := startSQSProxy(st, emu.env["AWS_ENDPOINT_URL_SQS"])
	if err != nil {
		return err
	}
	env := func() map[string]string {
		e := proxy.env(emu.env)
		for k, v := range map[string]string{"QUEUE_URL": url, "WORKER_CONCURRENCY": "5", "PROCESS_MIN_DELAY": "300ms",
			"PROCESS_MAX_DELAY": "800ms", "SQS_WAIT_TIME": "2s", "SHUTDOWN_TIMEOUT": "10s"} {
			e[k] = v
		}
		return e
	}
	first, _, err := st.serve("sqsworker", env())
	if err != nil {
		return err
	}
	var replicas []*proc
	fmt.Fprintf(st.out, "\nsqsworker: POST %s/send {\"Messages\": %d}; KEDA aws-sqs-queue, queueLength %d, 1-%d replicas (workers of 5)\n",
		first, messages, queueLength, maxReplicas)
	status, body, err := post(ctx, first+"/send", fmt.Sprintf(`{"Messages": %d}`, messages))
	if err != nil {
		return fmt.Errorf("POST /send: %w", err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("POST /send: %d %s", status, body)
	}
	fmt.Fprintf(st.out, "  /send answered %s", body)
	fmt.Fprintf(st.out, "%6s %8s %9s %9s  %s\n", "time", "visible", "in flight", "replicas", "queue")

	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	gqa0 := emu.calls.get("GetQueueAttributes")
	for polls := 1; ; polls++ {
		v, f, err := emu.depth(ctx, url)
		if err != nil {
			return err
		}
		want := min(max((v+f+queueLength-1)/queueLength, 1), maxReplicas)
		for 1+len(replicas) < want { // the first worker also serves /send
			e := env() // a replica's HTTP server runs too, as in a pod
			if _, err := listenOn(e); err != nil {
				return err
			}
			p, err := st.start("sqsworker", "sqsworker-"+strconv.Itoa(len(replicas)+2), e)
			if err != nil {
				return err
			}
			replicas = append(replicas, p)
		}
		for 1+len(replicas) > want { // SIGTERM; it drains on its own, like a pod
			replicas[len(replicas)-1].Terminate()
			replicas = replicas[:len(replicas)-1]
		}
		fmt.Fprintf(st.out, "%5.0fs %8d %9d %9d  %s\n", time.Since(start).Seconds(), v, f, 1+len(replicas), strings.Repeat("▮", (v+f+4)/5))
		if v+f == 0 {
			fmt.Fprintln(st.out, "  queue drained; KEDA scales back to the minimum")
			for _, p := range replicas {
				p.Terminate()
			}
			m.mu.Lock()
			m.sqs = &sqsCount{messages: messages, receive: proxy.calls.get("ReceiveMessage"),
				deleteBatch: proxy.calls.get("DeleteMessageBatch"), visibilityBatch: proxy.calls.get("ChangeMessageVisibilityBatch"),
				pollsByKeda: polls, gqaByKeda: emu.calls.get("GetQueueAttributes") - gqa0}
			m.mu.Unlock()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func post(ctx context.Context, url, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
