CREATE INDEX tasks_dies ON tasks (dies_at) WHERE state IN ('new', 'retry', 'retained');
