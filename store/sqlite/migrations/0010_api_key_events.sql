-- +goose Up
-- SQLite needs nothing stored to announce key changes: the server's single
-- writer connection carries a pre-update hook (store/sqlite/keyevents.go).
-- This file keeps the two dialects' migration lists the same.
SELECT 1;
