package sqlstore

import (
	"slices"
	"testing"
)

// Batches are split into few distinct sizes, so their statements can be
// prepared once, and the sizes add up to the batch.
func TestChunkSizes(t *testing.T) {
	for n, want := range map[int][]int{
		0: nil, 1: {1}, 3: {2, 1}, 128: {128}, 129: {128, 1}, 450: {128, 128, 128, 64, 2},
	} {
		if got := chunkSizes(n); !slices.Equal(got, want) {
			t.Errorf("chunkSizes(%d) = %v, want %v", n, got, want)
		}
	}
}
