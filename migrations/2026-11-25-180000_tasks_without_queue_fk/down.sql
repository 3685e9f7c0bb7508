ALTER TABLE tasks ADD CONSTRAINT tasks_namespace_queue_fkey FOREIGN KEY (namespace, queue)
    REFERENCES queues (namespace, name) ON DELETE CASCADE ON UPDATE CASCADE;
