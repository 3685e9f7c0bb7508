DROP INDEX tasks_late_by_queue;
