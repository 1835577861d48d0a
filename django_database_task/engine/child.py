"""Imported once by the fork server of ``isolation``: Django is set up before
any child is forked, so each child starts ready to run its task."""

import django

django.setup()
