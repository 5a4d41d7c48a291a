package sqlite

import "context"

// WriterPragma reads a pragma on the writer's connection.
func WriterPragma(ctx context.Context, s *Store, name string) (v string, err error) {
	err = s.write.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v)
	return v, err
}
