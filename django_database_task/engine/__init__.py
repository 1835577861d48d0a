"""The engine: claiming, running and completing tasks, and the services that
keep the queue healthy.

One module per part, each with one job: ``claim`` moves due tasks to
RUNNING, ``executor`` runs one, ``completer`` stores what it produced,
``worker`` drives them in the one claim-and-run loop that the command, the
API, the HTTP endpoints and the admin all use. ``transitions`` holds the
deliberate status changes, ``transient`` the riding out of passing database
errors, ``waker`` the interruptible wait, and ``maintenance`` one module per
background service.

Nothing here imports the API, the HTTP views or the admin: they are built on
the engine, not the other way round.
"""
