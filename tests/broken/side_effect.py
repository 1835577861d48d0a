from django.tasks import task

from tests.broken import IMPORTS

IMPORTS.append(__name__)


@task
def harmless():
    return "ran"
