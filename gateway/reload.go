package gateway

import (
	"context"

	"github.com/sluice-gw/sluice/config"
)

// ReloadFile loads, validates and applies the configuration file at path.
// A file that does not load or validate changes nothing: the error is logged,
// counted in sluice_config_reloads_total{result="failure"} and returned.
func (s *Server) ReloadFile(path string) error {
	cfg, err := config.Load(path)
	if err == nil {
		err = s.Reload(cfg)
		if err != nil {
			s.log.Error("configuration not reloaded; keeping the running one", "file", path, "error", err)
		}
		return err
	}
	s.ReloadFailed(err)
	return err
}

// WatchFile reloads path whenever it changes, until ctx is done.
func (s *Server) WatchFile(ctx context.Context, path string) error {
	return config.Watch(ctx, path, func() {
		s.log.Info("configuration file changed", "file", path)
		_ = s.ReloadFile(path)
	})
}
