package gateway

import (
	"context"

	"github.com/sluice-gw/sluice/config"
)

// ReloadFile loads, validates and applies the configuration file at path.
// A file that does not load or validate changes nothing: the error is logged,
// counted in sluice_config_reloads_total{result="failure"} and returned.
// The file goes through Check first, as `sluice validate` does, so a reload
// reports the same problems by key path, logs the same warnings, and a
// refused file never reaches the running table.
func (s *Server) ReloadFile(path string) error {
	cfg, err := config.Load(path)
	var warnings []string
	if err == nil {
		warnings, err = Check(cfg)
	}
	if err != nil {
		s.ReloadFailed(err)
		return err
	}
	for _, w := range warnings {
		s.log.Warn("configuration warning", "file", path, "warning", w)
	}
	if err := s.Reload(cfg); err != nil {
		s.log.Error("configuration not reloaded; keeping the running one", "file", path, "error", err)
		return err
	}
	return nil
}

// WatchFile reloads path whenever it changes, until ctx is done.
func (s *Server) WatchFile(ctx context.Context, path string) error {
	return config.Watch(ctx, path, func() {
		s.log.Info("configuration file changed", "file", path)
		_ = s.ReloadFile(path)
	})
}
