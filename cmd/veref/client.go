package main

import (
	"context"
	"fmt"
	"io"
)

func runClient(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	return usageError{fmt.Sprintf("unknown command %q; see veref --help", args[0])}
}
