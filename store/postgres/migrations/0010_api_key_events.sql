-- +goose Up
-- Every change to a stored key that can matter to authentication is
-- announced on the veref_api_keys channel, in the changing transaction, so
-- each server's key cache evicts it as the change commits. It is a trigger
-- so that every path that changes a key (revocation, suspension, rolling,
-- limits, deletion, an operator's manual UPDATE) is covered without having
-- to remember it; only last_used_at, moved by every usage flush, is quiet.
-- +goose StatementBegin
CREATE FUNCTION veref_api_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('veref_api_keys', OLD.prefix);
        RETURN OLD;
    END IF;
    IF (to_jsonb(OLD) - 'last_used_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_used_at') THEN
        PERFORM pg_notify('veref_api_keys', OLD.prefix);
        IF NEW.prefix IS DISTINCT FROM OLD.prefix THEN
            PERFORM pg_notify('veref_api_keys', NEW.prefix);
        END IF;
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION veref_api_key_changed();

-- An empty payload clears every cache.
-- +goose StatementBegin
CREATE FUNCTION veref_api_keys_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('veref_api_keys', '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER api_keys_truncated AFTER TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION veref_api_keys_truncated();
