-- The tasks table. CHECK constraints mirror the domain rules in src/domain/fields.rs so that
-- a bug upstream cannot store what the API would refuse. One index per list order, each led
-- by user_id, so listing one user's tasks never reads another user's rows.
CREATE TABLE tasks (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     TEXT        NOT NULL,
    title       TEXT        NOT NULL,
    description TEXT        NULL,
    completed   BOOLEAN     NOT NULL DEFAULT false,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT tasks_user_id_valid
        CHECK (octet_length(user_id) BETWEEN 1 AND 255 AND user_id !~ '[\u0001-\u001f\u007f-\u009f]'),
    CONSTRAINT tasks_title_valid
        CHECK (char_length(title) BETWEEN 1 AND 200
               AND title = btrim(title)
               AND title !~ '[\u0001-\u001f\u007f-\u009f]'),
    CONSTRAINT tasks_description_valid
        CHECK (description IS NULL OR char_length(description) <= 1000)
);

-- sort=created (forwards) and sort=-created (backwards).
CREATE INDEX tasks_user_created ON tasks (user_id, created_at, id);
-- sort=updated (backwards).
CREATE INDEX tasks_user_updated ON tasks (user_id, updated_at, id);
-- sort=title: case-insensitive, byte order, so the order does not depend on the server locale.
CREATE INDEX tasks_user_title ON tasks (user_id, (lower(title) COLLATE "C"), id);
