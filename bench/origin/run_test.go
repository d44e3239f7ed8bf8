package origin

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestRun(t *testing.T) {
	t.Run("two listen addresses serve until the context is cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out testnet.Buffer
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, []string{
				"-listen", "127.0.0.1:0,127.0.0.1:0", "-name", "pool", "-payload", "400",
				"-cache-control", "max-age=5", "-latency", "fixed:1ms",
			}, &out, io.Discard)
		}()
		addrRE := regexp.MustCompile(`origin (\S+) listening on http://(\S+)`)
		var found [][]string
		deadline := time.Now().Add(testTimeout)
		for len(found) < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("origin printed %q, want two listening lines", out.String())
			}
			time.Sleep(10 * time.Millisecond)
			found = addrRE.FindAllStringSubmatch(out.String(), -1)
		}
		var addrs []string
		for i, m := range found {
			wantName := []string{"pool-1", "pool-2"}[i]
			if m[1] != wantName {
				t.Errorf("line %d names %q, want %q", i, m[1], wantName)
			}
			resp, body := testnet.Do(t, m[2], rawGet("/orders/1"))
			if resp.Header.Get("X-Origin") != wantName || len(body) != 400 || resp.Header.Get("Cache-Control") != "max-age=5" {
				t.Errorf("%s answered X-Origin %q, %d bytes, Cache-Control %q",
					m[2], resp.Header.Get("X-Origin"), len(body), resp.Header.Get("Cache-Control"))
			}
			addrs = append(addrs, m[2])
		}
		if addrs[0] == addrs[1] {
			t.Fatalf("both origins on %s", addrs[0])
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(testTimeout):
			t.Fatal("Run did not return after cancel")
		}
		for _, a := range addrs {
			if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
				c.Close()
				t.Errorf("%s still accepts connections after Run returned", a)
			}
		}
	})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"an unknown fault mode", []string{"-fault", "explode"}, "unknown fault mode"},
		{"a malformed latency", []string{"-latency", "uniform:5ms"}, "uniform:MIN-MAX"},
		{"an error rate above 1", []string{"-listen", "127.0.0.1:0", "-error-rate", "2"}, "error rate"},
		{"too few names for the addresses", []string{"-listen", "127.0.0.1:0,127.0.0.1:0,127.0.0.1:0", "-name", "a,b"}, "2 names for 3"},
		{"a stray argument", []string{"-listen", "127.0.0.1:0", "extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is an error", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			err := Run(ctx, tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	t.Run("-h returns flag.ErrHelp", func(t *testing.T) {
		var stderr testnet.Buffer
		err := Run(context.Background(), []string{"-h"}, io.Discard, &stderr)
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr.String(), "-latency") {
			t.Errorf("error %v, usage %q", err, stderr.String())
		}
	})
	t.Run("an address in use fails and closes the origins already started", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		var out testnet.Buffer
		err = Run(context.Background(), []string{"-listen", "127.0.0.1:0," + busy.Addr().String()}, &out, io.Discard)
		if err == nil {
			t.Fatal("Run succeeded on a busy address")
		}
		m := regexp.MustCompile(`listening on http://(\S+)`).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("first origin did not start: %q", out.String())
		}
		if c, err := net.DialTimeout("tcp", m[1], time.Second); err == nil {
			c.Close()
			t.Errorf("first origin %s still listening", m[1])
		}
	})
}
