-- Jobs that wait for other jobs. A dependent is `waiting` with the number of its parents
-- not yet final in `pending_parents`; the parent's `has_children` tells the writes that
-- finish it to resolve its dependents in the same transaction. `input_from` says where
-- a step of a workflow takes its input: its parent's output (`parent`) or its parents'
-- outputs (`parents`), once they are known.
ALTER TABLE jobs ADD COLUMN pending_parents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN has_children INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN input_from TEXT;

CREATE TABLE job_dependencies (
    parent_id  INTEGER NOT NULL,
    child_id   INTEGER NOT NULL,
    on_failure TEXT    NOT NULL DEFAULT 'skip',
    PRIMARY KEY (parent_id, child_id)
);

CREATE INDEX job_dependencies_child ON job_dependencies (child_id);
CREATE INDEX jobs_waiting ON jobs (id) WHERE status = 'waiting';
