package worker

import (
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// lease is a message we hold invisible, and until when.
type lease struct {
	id, handle string
	expires    time.Time
}

// leases tracks in-flight messages for visibility extension.
type leases struct {
	mu sync.Mutex
	m  map[string]lease
}

func newLeases() *leases { return &leases{m: map[string]lease{}} }

func (l *leases) add(m types.Message, timeout time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := aws.ToString(m.MessageId)
	l.m[id] = lease{id: id, handle: aws.ToString(m.ReceiptHandle), expires: time.Now().Add(timeout)}
}

func (l *leases) remove(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, id)
}

func (l *leases) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// due returns the leases expiring within margin of now.
func (l *leases) due(now time.Time, margin time.Duration) []lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []lease
	for _, x := range l.m {
		if x.expires.Sub(now) <= margin {
			out = append(out, x)
		}
	}
	return out
}

// renewed records the new expiry of leases still held.
func (l *leases) renewed(ls []lease, expires time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range ls {
		if cur, ok := l.m[x.id]; ok {
			cur.expires = expires
			l.m[x.id] = cur
		}
	}
}
