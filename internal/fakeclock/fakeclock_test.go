package fakeclock

import (
	"testing"
	"time"
)

func TestTickerTicksPerIntervalAndKeepsOne(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New(t0)
	tk := c.NewTicker(time.Second)
	select {
	case <-tk.C():
		t.Fatal("ticked before any time passed")
	default:
	}
	c.Advance(time.Second)
	if at := <-tk.C(); !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("tick at %v, want %v", at, t0.Add(time.Second))
	}
	// Three intervals pass unread: one tick waits, as with time.Ticker.
	c.Advance(3 * time.Second)
	if at := <-tk.C(); !at.Equal(t0.Add(2 * time.Second)) {
		t.Fatalf("kept tick at %v, want the first missed one", at)
	}
	select {
	case at := <-tk.C():
		t.Fatalf("second tick %v kept", at)
	default:
	}
	c.Advance(time.Second)
	if at := <-tk.C(); !at.Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("tick at %v, want %v", at, t0.Add(5*time.Second))
	}
	tk.Stop()
	c.Advance(time.Hour)
	select {
	case at := <-tk.C():
		t.Fatalf("tick %v after Stop", at)
	default:
	}
	if n := c.Waiters(); n != 0 {
		t.Fatalf("%d waiters after Stop", n)
	}
}

func TestAdvanceFiresInOrder(t *testing.T) {
	c := New(time.Unix(0, 0))
	var order []int
	done := make(chan int, 3)
	for _, d := range []int{3, 1, 2} {
		ch := c.After(time.Duration(d) * time.Second)
		go func() { <-ch; done <- d }()
	}
	c.WaitForWaiters(3, time.Second)
	c.Advance(time.Second)
	order = append(order, <-done)
	c.Advance(2 * time.Second)
	order = append(order, <-done, <-done)
	if order[0] != 1 {
		t.Fatalf("fired %v, want 1 first", order)
	}
}
