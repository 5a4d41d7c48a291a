-- +goose Up
-- PostgreSQL announces key changes with NOTIFY (0010); SQLite's 0011 (0010b before goose) adds
-- the change counter it polls for other processes' writes. Kept so the two
-- dialects' migration lists stay the same.
SELECT 1;
