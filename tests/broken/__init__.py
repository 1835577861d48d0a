"""Task modules that fail as they are imported, the way a broken deploy does.

Rows naming them are written straight into the table (enqueue would refuse
them); ``IMPORTS`` counts imports of ``side_effect`` so that a test can tell
whether the worker imported it.
"""

IMPORTS: list[str] = []
