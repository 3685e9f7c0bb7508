DROP TABLE task_event_head;
DROP TABLE task_events;
