package hook

import (
	"context"
	"testing"
	"time"
)

// lockedThrottle returns a throttle with a one-hour tarpit and a client
// locked out at 192.0.2.1.
func lockedThrottle(t *testing.T) *Throttle {
	t.Helper()
	th := NewThrottle(1, time.Hour)
	th.SetTarpit(time.Hour)
	th.Failure("192.0.2.1")
	if _, blocked := th.Blocked("192.0.2.1"); !blocked {
		t.Fatal("client not locked out after its one allowed failure")
	}
	return th
}

// holdReturns runs hold and reports whether it returned within 10 s, far
// less than the one-hour tarpit it would otherwise wait.
func holdReturns(ctx context.Context, th *Throttle) bool {
	done := make(chan struct{})
	go func() {
		th.hold(ctx, "192.0.2.1", time.Hour)
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

func TestHoldEndsWithRequest(t *testing.T) {
	th := lockedThrottle(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if !holdReturns(ctx, th) {
		t.Error("hold kept a request whose context had ended")
	}
}

func TestHoldSkippedWhenFull(t *testing.T) {
	th := lockedThrottle(t)
	for range cap(th.held) {
		th.held <- struct{}{}
	}
	if !holdReturns(context.Background(), th) {
		t.Error("hold kept a request beyond the limit of held requests")
	}
}

func TestHoldReturnsTimeLeft(t *testing.T) {
	th := lockedThrottle(t)
	th.SetTarpit(time.Millisecond)
	left := th.hold(context.Background(), "192.0.2.1", time.Hour)
	if left <= 0 {
		t.Errorf("hold returned %s left for a client locked out for an hour", left)
	}
}
