-- Jobs that wait for other jobs. A dependent is `waiting` with the number of its parents
-- not yet final in `pending_parents`; the parent's `has_children` tells the writes that
-- finish it to resolve its dependents in the same transaction. `input_from` says where
-- a step of a workflow takes its input: its parent's output (`parent`) or its parents'
-- outputs (`parents`), once they are known.
ALTER TABLE {{schema}}.jobs
    ADD COLUMN pending_parents integer NOT NULL DEFAULT 0,
    ADD COLUMN has_children    boolean NOT NULL DEFAULT false,
    ADD COLUMN input_from      text;

CREATE TABLE {{schema}}.job_dependencies (
    parent_id  bigint NOT NULL,
    child_id   bigint NOT NULL,
    on_failure text   NOT NULL DEFAULT 'skip',
    PRIMARY KEY (parent_id, child_id)
);

CREATE INDEX job_dependencies_child ON {{schema}}.job_dependencies (child_id);
CREATE INDEX jobs_waiting ON {{schema}}.jobs (id) WHERE status = 'waiting';
