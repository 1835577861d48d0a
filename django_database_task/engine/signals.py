"""Signals of the engine, beside Django's ``task_enqueued``, ``task_started``
and ``task_finished``, for what Django's task framework has no name for.

``task_rescued`` is sent once for each RUNNING task taken back from a worker
that was lost (it stopped heartbeating, or an operator requeued the task as
stale), after the change is stored. The sender is the backend class, as for
Django's signals; the arguments are ``backend_name``, ``task_id``,
``task_path``, ``queue_name`` and ``status``: READY when the task runs
again, FAILED when it had used its attempts.
"""

from django.dispatch import Signal

task_rescued = Signal()
