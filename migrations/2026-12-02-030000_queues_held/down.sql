DROP INDEX queues_held;
