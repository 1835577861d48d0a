"""to_json's fast path for plain JSON values agrees with its checked path."""

from collections import OrderedDict
from enum import IntEnum

import pytest

from django_database_task.validation import _checked, to_json


class Level(IntEnum):
    HIGH = 2


class Text(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**80),
        1.5,
        "é",
        [],
        (),
        {},
        (1, (2, [3, {"a": (4,)}])),
        {"a": [None, False, 2.5, {"b": ()}]},
        # Not plain: the checked path converts them.
        b"bytes",
        [1, b"x"],
        {"k": (b"y",)},
        OrderedDict(a=1),
        Level.HIGH,
        Text("sub"),
    ],
)
def test_fast_and_checked_paths_give_the_same_value(value):
    fast, checked = to_json(value, "args"), _checked(value, "args")
    assert fast == checked
    assert type(fast) is type(checked)


@pytest.mark.parametrize(
    "value",
    [float("nan"), [1, float("inf")], {"a": {1: 2}}, [set()], {"a": [b"\xff"]}],
)
def test_what_the_checked_path_refuses_is_refused_with_its_message(value):
    with pytest.raises((TypeError, ValueError)) as checked:
        _checked(value, "args")
    with pytest.raises(type(checked.value)) as fast:
        to_json(value, "args")
    assert str(fast.value) == str(checked.value)


def test_containers_are_copied_not_shared():
    value = [[1], {"a": [2]}]
    converted = to_json(value, "args")
    assert converted == value
    assert converted is not value
    assert converted[0] is not value[0]
    assert converted[1]["a"] is not value[1]["a"]
