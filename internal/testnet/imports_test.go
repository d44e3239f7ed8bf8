package testnet

import (
	"os/exec"
	"strings"
	"testing"
)

// Only tests may import testnet: what a non-test package imports is compiled
// into the binary.
func TestOnlyTestsImportTestnet(t *testing.T) {
	const self = "github.com/sluice-gw/sluice/internal/testnet"
	out, err := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "github.com/sluice-gw/sluice/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		for _, imp := range fields[1:] {
			if imp == self {
				t.Errorf("package %s imports %s outside its tests", fields[0], self)
			}
		}
	}
}
