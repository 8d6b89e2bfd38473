from __future__ import annotations

import brains_jobs


def test_all_is_sorted_and_complete() -> None:
    public = {name for name in vars(brains_jobs) if not name.startswith("_")}
    modules = {
        name
        for name, value in vars(brains_jobs).items()
        if getattr(value, "__class__", None).__name__ == "module"
    }
    assert brains_jobs.__all__ == sorted(brains_jobs.__all__)
    assert set(brains_jobs.__all__) == public - modules


def test_every_public_name_has_a_docstring() -> None:
    for name in brains_jobs.__all__:
        obj = getattr(brains_jobs, name)
        assert (obj.__doc__ or "").strip(), f"{name} has no docstring"
