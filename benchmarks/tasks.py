from django.tasks import task


@task
def noop(number):
    return number
