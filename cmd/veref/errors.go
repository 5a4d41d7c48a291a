package main

import (
	"errors"
	"fmt"

	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/tools"
)

// explain turns store and tool errors into one line an operator can act on.
func explain(err error, what string) error {
	var te *tools.Error
	switch {
	case errors.As(err, &te):
		if te.Hint != "" {
			return fmt.Errorf("%s (%s)", te.Message, te.Hint)
		}
		return errors.New(te.Message)
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%s was not found", what)
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%s already exists", what)
	default:
		return err
	}
}
