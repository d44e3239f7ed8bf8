package testnet

import (
	"os"
	"testing"
)

// WriteFile writes content to path (mode 0600) and returns path, failing the
// test if it cannot: a configuration file for the code under test.
func WriteFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
