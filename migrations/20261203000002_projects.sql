-- Projects and memberships: a lab's catalogue is shared through projects, and what a caller
-- may reach is its role in an entry's project (narrowed by its key's project list).

CREATE TYPE project_role AS ENUM ('viewer', 'editor', 'admin');

CREATE TABLE projects (
    project_id  uuid PRIMARY KEY,
    name        text NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 256),
    -- From the name at creation, as Seven Bridges does; the /v2 id is created_by/slug.
    slug        text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,127}$'),
    description text CHECK (char_length(description) <= 4096),
    created_by  text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    -- Every user has exactly one: where entries and samples go when no project is named.
    personal    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    modified_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (created_by, slug)
);
CREATE UNIQUE INDEX projects_one_personal_per_user ON projects (created_by) WHERE personal;

CREATE TABLE project_members (
    user_id    text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    project_id uuid NOT NULL REFERENCES projects (project_id) ON DELETE CASCADE,
    role       project_role NOT NULL,
    -- Seven Bridges' `execute` has no meaning here; it is stored so it is echoed back.
    execute    boolean NOT NULL DEFAULT false,
    added_at   timestamptz NOT NULL DEFAULT now(),
    -- user first: every access check asks "which projects may this user reach?"
    PRIMARY KEY (user_id, project_id)
);
CREATE INDEX project_members_project_idx ON project_members (project_id);

-- A user's personal project, with the user as its admin, made with the user: no path that
-- creates a user (keys create, POST /api_keys for another user) can forget it.
CREATE FUNCTION create_personal_project() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    personal_id uuid := gen_random_uuid();
BEGIN
    INSERT INTO projects (project_id, name, slug, created_by, personal)
    VALUES (personal_id, 'Personal', 'personal', NEW.user_id, true);
    INSERT INTO project_members (user_id, project_id, role) VALUES (NEW.user_id, personal_id, 'admin');
    RETURN NEW;
END;
$$;
CREATE TRIGGER users_personal_project AFTER INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION create_personal_project();

-- Existing users: the same personal project, holding everything they own.
WITH made AS (
    INSERT INTO projects (project_id, name, slug, created_by, personal, created_at, modified_at)
    SELECT gen_random_uuid(), 'Personal', 'personal', user_id, true, created_at, created_at
    FROM users
    RETURNING project_id, created_by
)
INSERT INTO project_members (user_id, project_id, role)
SELECT created_by, project_id, 'admin' FROM made;

ALTER TABLE data_entries ADD COLUMN project_id uuid REFERENCES projects (project_id);
UPDATE data_entries AS e SET project_id = p.project_id
FROM projects AS p WHERE p.created_by = e.user_id AND p.personal;
ALTER TABLE data_entries ALTER COLUMN project_id SET NOT NULL;

ALTER TABLE physical_samples ADD COLUMN project_id uuid REFERENCES projects (project_id);
UPDATE physical_samples AS s SET project_id = p.project_id
FROM projects AS p WHERE p.created_by = s.user_id AND p.personal;
ALTER TABLE physical_samples ALTER COLUMN project_id SET NOT NULL;

-- A sample's name is unique within its project (it was unique per owner, whose personal
-- project now holds all of their samples).
DROP INDEX physical_samples_owner_name_key;
CREATE UNIQUE INDEX physical_samples_project_name_key
    ON physical_samples (project_id, lower(btrim(name)));

-- Lists are scoped to projects now; these serve the orderings and the keyset cursor.
DROP INDEX data_entries_owner_upload_idx;
DROP INDEX data_entries_owner_updated_idx;
CREATE INDEX data_entries_project_upload_idx ON data_entries (project_id, upload_datetime, data_id);
CREATE INDEX data_entries_project_updated_idx ON data_entries (project_id, last_updated, data_id);

-- History is read by whoever may read the entry's project: each row records the project
-- the entry was in after the change, so a deleted entry's history stays with its project.
ALTER TABLE data_entry_history ADD COLUMN project_id uuid;
UPDATE data_entry_history AS h SET project_id = p.project_id
FROM projects AS p WHERE p.created_by = h.owner_id AND p.personal;

-- A key may be limited to some projects; NULL reaches every project of its user.
ALTER TABLE api_keys ADD COLUMN projects uuid[];
