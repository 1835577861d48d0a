# A module that does not even compile.
def task(:
    pass
