package testnet

import (
	"testing"
	"time"
)

func TestRedisCanBeKilledPausedAndRestarted(t *testing.T) {
	r := StartRedis(t)
	if err := ping(r.Addr()); err != nil {
		t.Fatalf("fresh server: %v", err)
	}
	r.Pause()
	if err := ping(r.Addr()); err == nil {
		t.Fatal("paused server answered PING")
	}
	r.Resume()
	deadline := time.Now().Add(5 * time.Second)
	for ping(r.Addr()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("resumed server does not answer PING")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.Kill()
	if err := ping(r.Addr()); err == nil {
		t.Fatal("killed server answered PING")
	}
	r.Restart()
	if err := ping(r.Addr()); err != nil {
		t.Fatalf("restarted server: %v", err)
	}
}
