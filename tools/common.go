package tools

import (
	"errors"
	"net/mail"
	"strings"

	"github.com/verefwork/veref/store"
)

// Paging is embedded in every list input.
type Paging struct {
	Limit  int    `json:"limit,omitempty" query:"limit" minimum:"1" maximum:"200" doc:"Page size, 1 to 200 (default 50)"`
	Cursor string `json:"cursor,omitempty" query:"cursor" maxLength:"200" doc:"The nextCursor of the previous page"`
}

func (p Paging) page() store.Page { return store.Page{Limit: p.Limit, Cursor: p.Cursor} }

// List is a page of results, newest first.
type List[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"nextCursor,omitempty" doc:"Pass as cursor to get the next page; absent on the last page"`
}

func listOf[T any](rows []T, next string) List[T] {
	if rows == nil {
		rows = []T{}
	}
	return List[T]{Data: rows, NextCursor: next}
}

// IDInput names one record in the path.
type IDInput struct {
	ID string `json:"id" path:"id" minLength:"1" maxLength:"100"`
}

// notFound maps a store miss to the caller-facing 404, also for rows of
// another tenant or environment.
func notFound(err error, what, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return NotFound(what, id)
	}
	return err
}

func checkEmail(field, s string) error {
	if s == "" {
		return nil
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || !strings.Contains(s, ".") {
		return Invalid(field, "not a valid e-mail address")
	}
	return nil
}
