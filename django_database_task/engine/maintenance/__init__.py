"""Services that keep the queue healthy, one module each: ``rescuer`` frees
the tasks of dead workers, ``cleaner`` deletes finished tasks,
``stale`` requeues tasks by age on request."""
