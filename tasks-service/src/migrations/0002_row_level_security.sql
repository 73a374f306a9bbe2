-- Row-level security: the second line of isolation. Every statement the service runs also
-- says WHERE user_id = $n; this policy holds even for one that forgot to. The setting is
-- transaction-local (set_config(..., true)), so a pooled connection never carries it over.
ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
-- FORCE: the policy applies to the table owner too.
ALTER TABLE tasks FORCE ROW LEVEL SECURITY;

CREATE POLICY tasks_owner_only ON tasks
    USING (user_id = current_setting('app.user_id', true))
    WITH CHECK (user_id = current_setting('app.user_id', true));

-- Superusers and BYPASSRLS roles ignore even forced policies. Such a login switches to this
-- role (SET ROLE) on every pooled connection. Roles are cluster-wide, so several instances or
-- databases may race to create it: the loser's duplicate error is expected and ignored. A
-- login that may not create roles, and that the policy binds as it is (the least-privilege
-- owner of the database), needs no such role: for it the role's steps are skipped.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tasks_rls') THEN
        CREATE ROLE tasks_rls NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
    WHEN insufficient_privilege THEN
        IF (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
            RAISE;
        END IF;
END
$$;

-- A superuser may SET ROLE to any role; anyone else needs membership, which only a login
-- that could bypass the policy uses (the service refuses to start if it cannot).
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND EXISTS (SELECT FROM pg_roles WHERE rolname = 'tasks_rls') THEN
        EXECUTE format('GRANT tasks_rls TO %I', current_user);
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
    WHEN insufficient_privilege THEN
        IF (SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
            RAISE;
        END IF;
END
$$;

-- Only what the store needs: no TRUNCATE, no DDL, nothing on schema_migrations.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'tasks_rls') THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO tasks_rls', current_schema());
        GRANT SELECT, INSERT, UPDATE, DELETE ON tasks TO tasks_rls;
    END IF;
END
$$;
