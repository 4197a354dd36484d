package worker

import (
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// lease is a message we hold invisible, and until when. extending is set
// while a visibility extension of it is under way and closed when it ends.
type lease struct {
	id, handle string
	expires    time.Time
	extending  chan struct{}
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

// remove forgets a lease. If an extension of it is under way, the returned
// channel closes when that ends (nil otherwise).
func (l *leases) remove(id string) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	ext := l.m[id].extending
	delete(l.m, id)
	return ext
}

func (l *leases) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// due returns the leases expiring within margin of now and marks them as
// being extended; the caller must call finish with them.
func (l *leases) due(now time.Time, margin time.Duration) []lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []lease
	for id, x := range l.m {
		if x.expires.Sub(now) <= margin {
			x.extending = make(chan struct{})
			l.m[id] = x
			out = append(out, x)
		}
	}
	return out
}

// finish ends the extension of ls: leases still held get the new expiry if
// it succeeded, and whoever waits to release one of them may go on.
func (l *leases) finish(ls []lease, expires time.Time, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range ls {
		if cur, held := l.m[x.id]; held {
			if ok {
				cur.expires = expires
			}
			cur.extending = nil
			l.m[x.id] = cur
		}
		close(x.extending)
	}
}
