from __future__ import annotations

import pytest

import brains_jobs as bj
from brains_jobs.registry import Registry
from tests.support import jobs


def test_unknown_type_names_the_type_and_the_known_ones() -> None:
    registry = Registry()
    registry.add(jobs.add)
    registry.add(jobs.sleep)
    with pytest.raises(bj.UnknownJobType) as info:
        registry.get("ad")
    assert "'ad'" in str(info.value)
    assert "'add'" in str(info.value) and "'sleep'" in str(info.value)


def test_two_plugins_one_name() -> None:
    registry = Registry()
    registry.add(jobs.add, owner="first")
    other = bj.JobDefinition(
        "add", jobs.noop.handler, input_model=jobs.Numbers, output_model=jobs.Sum
    )
    with pytest.raises(bj.PluginError, match=r"'first'.*'second'"):
        registry.add(other, owner="second")


def test_not_a_definition() -> None:
    with pytest.raises(bj.PluginError, match="not a JobDefinition"):
        Registry().add(object(), owner="p")  # type: ignore[arg-type]
