-- Revocation feed for the auth gateway, in Better Auth's own PostgreSQL database.
--
-- Whenever a session ends (sign-out, revoke-session, revoke-sessions, revoke-other-sessions,
-- an admin revoking or deleting, a password reset that revokes sessions, session expiry
-- clean-up, an UPDATE that expires it) or a user is banned (admin plugin) or deleted, or an
-- admin's impersonation loses its admin, a trigger writes a durable row to
-- auth_revocation, and that row wakes every gateway listening on channel `auth_revocation`
-- (NOTIFY is delivered when the transaction commits). Triggers rather than Better Auth hooks
-- because every code path that removes a session row is covered, including ones a hook list
-- would miss (cascades from deleting a user, a future endpoint, a manual DELETE).
--
-- Idempotent and atomic: apply it after Better Auth's migrations, again after enabling the
-- admin plugin (its `banned` column), and on every start if you like. The project's server
-- (server.mjs) applies it at start; an existing app applies it once with
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f revocation.sql
-- Tables are found through the connection's search_path, like Better Auth finds them.
--
-- The triggers on Better Auth's tables are deferred to the commit: a revocation is stamped
-- when its session or user is gone for every other connection, not when the DELETE ran. A
-- transaction held open (a console's BEGIN; DELETE ...; COMMIT minutes later) still lets the
-- session mint tokens until it commits, and the gateways remember the revocation from then.
--
-- The gateway reads this table (SELECT) and LISTENs; it writes nothing here.

BEGIN;

CREATE TABLE IF NOT EXISTS auth_revocation (
  id bigserial PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('session', 'user')),
  subject text NOT NULL,              -- the session id (sid) or the user id (sub)
  revoked_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS auth_revocation_revoked_at ON auth_revocation (revoked_at);
-- A gateway looks up each announced revocation by its subject and applies what the row says,
-- never the notification's own words: NOTIFY needs no privilege, so any login to this
-- database could send one.
CREATE INDEX IF NOT EXISTS auth_revocation_subject ON auth_revocation (subject);

-- Every new row is announced: {"kind": ..., "subject": ..., "at": <whole epoch seconds>}.
-- `at` is floored, so a user-wide revocation also covers tokens issued in its own second
-- (iat is whole seconds too): refusing a token a few hundred milliseconds too young is the
-- safe side. Now and then the same trigger prunes rows older than 33 days: a gateway loads
-- the revocations of the longest token lifetime plus three leeways (minutes by default), and
-- its settings keep that within 33 days (REVOCATION_TOKEN_LIFETIME_SECS at most 30 days,
-- JWT_LEEWAY_SECS at most 300 s), so no row is pruned while a token it ended is accepted.
CREATE OR REPLACE FUNCTION auth_revocation_announce() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify(
    'auth_revocation',
    json_build_object(
      'kind', NEW.kind,
      'subject', NEW.subject,
      'at', floor(extract(epoch FROM NEW.revoked_at))::bigint
    )::text
  );
  IF NEW.id % 256 = 0 THEN
    DELETE FROM auth_revocation WHERE revoked_at < clock_timestamp() - interval '33 days';
  END IF;
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS auth_revocation_announce ON auth_revocation;
CREATE TRIGGER auth_revocation_announce
  AFTER INSERT ON auth_revocation
  FOR EACH ROW EXECUTE FUNCTION auth_revocation_announce();

-- A session row gone, for whatever reason: its tokens (claim `sid`) are refused. Not for a
-- session that expired more than 33 days ago: every token it issued is past what any gateway
-- accepts (above), and the first clean-up of expired sessions (Better Auth deletes them only
-- when it looks one up) must not announce years of them to every gateway.
CREATE OR REPLACE FUNCTION auth_revocation_session_ended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO auth_revocation (kind, subject) VALUES ('session', OLD.id);
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS auth_revocation_session_ended ON "session";
CREATE CONSTRAINT TRIGGER auth_revocation_session_ended
  AFTER DELETE ON "session"
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW
  WHEN (OLD."expiresAt" > clock_timestamp() - interval '33 days')
  EXECUTE FUNCTION auth_revocation_session_ended();

-- A session ended by expiring it rather than deleting it (`UPDATE "session" SET "expiresAt" =
-- now()`; Better Auth does this with `preserveSessionInDatabase`): recorded like a deletion. Only
-- an UPDATE that moves a live expiry earlier, to within a minute of now or before (a minute:
-- room for the app's clock to run ahead of the database's when it writes its own "now"); a
-- refresh moves it later, and natural expiry is no UPDATE at all. The WHEN runs at the UPDATE,
-- the function at the commit: it records nothing if the transaction gave the session a future
-- again, nor if it deleted the row (the deletion's trigger records that).
CREATE OR REPLACE FUNCTION auth_revocation_session_expired() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (
    SELECT 1 FROM "session"
    WHERE id = NEW.id AND "expiresAt" <= clock_timestamp() + interval '1 minute'
  ) THEN
    INSERT INTO auth_revocation (kind, subject) VALUES ('session', NEW.id);
  END IF;
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS auth_revocation_session_expired ON "session";
CREATE CONSTRAINT TRIGGER auth_revocation_session_expired
  AFTER UPDATE OF "expiresAt" ON "session"
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW
  WHEN (NEW."expiresAt" < OLD."expiresAt"
        AND OLD."expiresAt" > clock_timestamp()
        AND NEW."expiresAt" <= clock_timestamp() + interval '1 minute')
  EXECUTE FUNCTION auth_revocation_session_expired();

-- TRUNCATE is refused on both tables: it fires no row trigger, so "log everyone out" by
-- TRUNCATE would end every session and tell no gateway. Refused rather than recorded because
-- a statement trigger cannot be deferred to the commit (the rows would be stamped at the
-- TRUNCATE, too early for a transaction held open, see above) and because DELETE already does
-- it all: `DELETE FROM "session"` records every session, `DELETE FROM "user"` every user.
-- (A throw-away database reset on purpose: DROP TRIGGER first, or DELETE.)
CREATE OR REPLACE FUNCTION auth_revocation_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'TRUNCATE of "%" would end sessions without recording them in auth_revocation', TG_TABLE_NAME
    USING HINT = format('Use DELETE FROM %I: each row it removes is recorded, and gateways refuse its tokens.', TG_TABLE_NAME);
END
$$;

DROP TRIGGER IF EXISTS auth_revocation_session_truncated ON "session";
CREATE TRIGGER auth_revocation_session_truncated
  BEFORE TRUNCATE ON "session"
  FOR EACH STATEMENT EXECUTE FUNCTION auth_revocation_refuse_truncate();

DROP TRIGGER IF EXISTS auth_revocation_user_truncated ON "user";
CREATE TRIGGER auth_revocation_user_truncated
  BEFORE TRUNCATE ON "user"
  FOR EACH STATEMENT EXECUTE FUNCTION auth_revocation_refuse_truncate();

-- A user deleted or banned: every token of that user (claim `sub`) issued up to now is
-- refused, whatever issued it (a token without `sid` included). Their sessions end too, or
-- a ban written to the row alone would leave them minting new tokens (the admin plugin
-- checks `banned` only when a session is made; a deleted user's sessions go by cascade), and
-- so do the sessions they opened as someone else (the admin plugin's impersonation: the
-- session is the other user's, `impersonatedBy` names this one).
CREATE OR REPLACE FUNCTION auth_revocation_user_ended() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  ended text := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
BEGIN
  INSERT INTO auth_revocation (kind, subject) VALUES ('user', ended);
  IF TG_OP <> 'DELETE' THEN
    DELETE FROM "session" WHERE "userId" = ended;
  END IF;
  IF EXISTS (
    SELECT 1 FROM pg_attribute
    WHERE attrelid = '"session"'::regclass AND attname = 'impersonatedBy' AND NOT attisdropped
  ) THEN
    EXECUTE 'DELETE FROM "session" WHERE "impersonatedBy" = $1' USING ended;
  END IF;
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS auth_revocation_user_deleted ON "user";
CREATE CONSTRAINT TRIGGER auth_revocation_user_deleted
  AFTER DELETE ON "user"
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION auth_revocation_user_ended();

-- `banned` exists only with Better Auth's admin plugin: the ban trigger is created when the
-- column is there (re-apply this file after enabling the plugin), and dropped otherwise.
DO $$
BEGIN
  EXECUTE 'DROP TRIGGER IF EXISTS auth_revocation_user_banned ON "user"';
  IF EXISTS (
    SELECT 1 FROM pg_attribute
    WHERE attrelid = '"user"'::regclass AND attname = 'banned' AND NOT attisdropped
  ) THEN
    EXECUTE 'CREATE CONSTRAINT TRIGGER auth_revocation_user_banned'
      ' AFTER UPDATE OF banned ON "user"'
      ' DEFERRABLE INITIALLY DEFERRED'
      ' FOR EACH ROW WHEN (NEW.banned IS TRUE AND OLD.banned IS DISTINCT FROM TRUE)'
      ' EXECUTE FUNCTION auth_revocation_user_ended()';
  END IF;
END
$$;

-- An impersonation (admin plugin: a session of another user whose `impersonatedBy` names the
-- admin) lives only as long as its admin is an admin and signed in. It ends, like any deleted
-- session, when
--   * the admin's last own live session ends (`impersonatedBy` NULL, not expired): revoking
--     the admin's sessions, or their last sign-out. Signing out of one device while signed in
--     on another keeps the impersonation, as it keeps that other session;
--   * the admin's `role` changes in any way (a demotion; Better Auth's set-role writes the
--     column and touches no session);
--   * the admin is banned or deleted (auth_revocation_user_ended, above).
-- Created with the plugin's columns (re-apply after enabling it), dropped otherwise. The
-- partial index keeps the check cheap at every sign-out: it holds only impersonations.
-- Two of the admin's last sessions deleted by two transactions at once would each find the
-- other's still live at its commit (READ COMMITTED) and leave the impersonation: the checks
-- for one admin take turns under a transaction-scoped advisory lock, the second one then
-- seeing what the first committed. Taken at commit, after every row lock the transaction
-- needs, so it adds no lock-order deadlock.
CREATE OR REPLACE FUNCTION auth_revocation_impersonator_signed_out() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('auth_revocation.impersonator:' || OLD."userId", 0));
  IF EXISTS (SELECT 1 FROM "session" WHERE "impersonatedBy" = OLD."userId")
     AND NOT EXISTS (
       SELECT 1 FROM "session"
       WHERE "userId" = OLD."userId" AND "impersonatedBy" IS NULL
         AND "expiresAt" > clock_timestamp()
     ) THEN
    DELETE FROM "session" WHERE "impersonatedBy" = OLD."userId";
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION auth_revocation_impersonator_role_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM "session" WHERE "impersonatedBy" = NEW.id;
  RETURN NULL;
END
$$;

DO $$
BEGIN
  EXECUTE 'DROP TRIGGER IF EXISTS auth_revocation_impersonator_signed_out ON "session"';
  EXECUTE 'DROP TRIGGER IF EXISTS auth_revocation_impersonator_role_changed ON "user"';
  IF EXISTS (
    SELECT 1 FROM pg_attribute
    WHERE attrelid = '"session"'::regclass AND attname = 'impersonatedBy' AND NOT attisdropped
  ) THEN
    EXECUTE 'CREATE INDEX IF NOT EXISTS auth_revocation_session_impersonated_by'
      ' ON "session" ("impersonatedBy") WHERE "impersonatedBy" IS NOT NULL';
    EXECUTE 'CREATE CONSTRAINT TRIGGER auth_revocation_impersonator_signed_out'
      ' AFTER DELETE ON "session"'
      ' DEFERRABLE INITIALLY DEFERRED'
      ' FOR EACH ROW WHEN (OLD."impersonatedBy" IS NULL)'
      ' EXECUTE FUNCTION auth_revocation_impersonator_signed_out()';
    IF EXISTS (
      SELECT 1 FROM pg_attribute
      WHERE attrelid = '"user"'::regclass AND attname = 'role' AND NOT attisdropped
    ) THEN
      EXECUTE 'CREATE CONSTRAINT TRIGGER auth_revocation_impersonator_role_changed'
        ' AFTER UPDATE OF role ON "user"'
        ' DEFERRABLE INITIALLY DEFERRED'
        ' FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role)'
        ' EXECUTE FUNCTION auth_revocation_impersonator_role_changed()';
    END IF;
  END IF;
END
$$;

-- The gateways read this table and nothing else of Better Auth's. Where the deployment made a
-- role for that (deploy/postgres/roles.sh makes `auth_revocation_reader` and gives it to the
-- gateways' login), it gets SELECT here; elsewhere grant it by hand:
--   GRANT SELECT ON auth_revocation TO <the gateways' login>;
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'auth_revocation_reader') THEN
    GRANT SELECT ON auth_revocation TO auth_revocation_reader;
  END IF;
END
$$;

COMMIT;
