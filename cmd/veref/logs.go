package main

import (
	"errors"
	"maps"

	"github.com/rs/zerolog"

	"github.com/verefwork/veref/logdedup"
	"github.com/verefwork/veref/workers"
)

// workerLog is where the workers' lines go. Their warnings carry the
// error as text; a worker polling a database that is down fails the same
// way every poll, so those lines are de-duplicated by message and error.
func workerLog(log zerolog.Logger, repeats *logdedup.Deduper) workers.Logf {
	return func(level, msg string, fields map[string]any) {
		if level != "warn" {
			log.Info().Fields(fields).Msg(msg)
			return
		}
		var err error
		if text, ok := fields["error"].(string); ok {
			err = errors.New(text)
			fields = maps.Clone(fields)
			delete(fields, "error")
		}
		repeats.Warn(log, msg, err).Fields(fields).Send()
	}
}
