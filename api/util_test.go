package api_test

import (
	"io"
	"testing"

	"github.com/rs/zerolog"

	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/storetest"
)

func zerologDiscard() zerolog.Logger { return zerolog.New(io.Discard) }

func openSQLite(t *testing.T) store.Store { return storetest.OpenSQLite(t) }
