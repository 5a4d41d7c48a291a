-- +goose Up
-- Another process writing this file (veref admin keys revoke beside a
-- running server) is not seen by the server's update hook. These triggers
-- count every change to a key other than the usage flush's last_used_at,
-- and the server polls the count (store/sqlite/keyevents.go) and clears its
-- key cache when it moves.
CREATE TABLE api_key_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO api_key_epoch (id, n) VALUES (1, 0);

-- +goose StatementBegin
CREATE TRIGGER api_keys_changed AFTER UPDATE ON api_keys
    WHEN NEW.last_used_at IS OLD.last_used_at
BEGIN
    UPDATE api_key_epoch SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER api_keys_deleted AFTER DELETE ON api_keys
BEGIN
    UPDATE api_key_epoch SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd
