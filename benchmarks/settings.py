"""The test settings without the test URLconf or the second database."""

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.urls"
DATABASES = {"default": DATABASES["default"]}  # noqa: F405
