package main

import (
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Buffered log lines are never lost or reordered: a warning is written at
// once with every line before it, Close writes the rest, and lines logged
// after Close are written through.
func TestLogBufferLosesNothing(t *testing.T) {
	var out syncBuffer
	b := newLogBuffer(&out)
	log := zerolog.New(b)
	log.Info().Msg("one")
	log.Warn().Msg("two")
	assert.Equal(t, `{"level":"info","message":"one"}`+"\n"+`{"level":"warn","message":"two"}`+"\n", out.String())

	log.Info().Msg("three")
	require.NoError(t, b.Close())
	assert.Contains(t, out.String(), `"three"`)
	log.Info().Msg("four")
	assert.Contains(t, out.String(), `"four"`, "after Close, lines are written through")
}
