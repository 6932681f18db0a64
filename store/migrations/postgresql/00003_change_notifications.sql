-- Every change to the tokens, including a direct SQL edit such as
-- GroupServer's own tool rewriting its option row, notifies the channel
-- gs_auth_token_changed, so that every instance drops its cached tokens at
-- once. The payload is the database clock at the change, in seconds since
-- the Unix epoch, from which listeners measure how stale they were.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION gs_auth_token_notify() RETURNS trigger AS $$
BEGIN
    IF TG_TABLE_NAME = 'option' AND TG_LEVEL = 'ROW' THEN
        IF (TG_OP = 'INSERT' AND NEW.component_id IS DISTINCT FROM 'gs.auth.token')
            OR (TG_OP = 'DELETE' AND OLD.component_id IS DISTINCT FROM 'gs.auth.token')
            OR (TG_OP = 'UPDATE' AND OLD.component_id IS DISTINCT FROM 'gs.auth.token'
                AND NEW.component_id IS DISTINCT FROM 'gs.auth.token') THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM pg_notify('gs_auth_token_changed', extract(epoch from clock_timestamp())::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

CREATE TRIGGER gs_auth_token_notify AFTER INSERT OR UPDATE OR DELETE ON gs_auth_token
    FOR EACH STATEMENT EXECUTE FUNCTION gs_auth_token_notify();
CREATE TRIGGER gs_auth_token_notify_truncate AFTER TRUNCATE ON gs_auth_token
    FOR EACH STATEMENT EXECUTE FUNCTION gs_auth_token_notify();
CREATE TRIGGER gs_auth_token_notify AFTER INSERT OR UPDATE OR DELETE ON option
    FOR EACH ROW EXECUTE FUNCTION gs_auth_token_notify();
CREATE TRIGGER gs_auth_token_notify_truncate AFTER TRUNCATE ON option
    FOR EACH STATEMENT EXECUTE FUNCTION gs_auth_token_notify();

-- +goose Down
DROP TRIGGER gs_auth_token_notify_truncate ON option;
DROP TRIGGER gs_auth_token_notify ON option;
DROP TRIGGER gs_auth_token_notify_truncate ON gs_auth_token;
DROP TRIGGER gs_auth_token_notify ON gs_auth_token;
DROP FUNCTION gs_auth_token_notify();
