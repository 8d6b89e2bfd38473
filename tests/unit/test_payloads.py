"""`size_over`: a payload's size in bytes of UTF-8 against a limit, counted only when
the text could be over it.
"""

from __future__ import annotations

import pytest

from brains_jobs.payloads import encoded_size, size_over


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a" * 10,
        "\u00e9" * 5,  # 2 bytes each
        "\u20ac" * 4,  # 3 bytes each
        "\U0001f600" * 2,  # 4 bytes each
        "\U0001f600" * 3,
        "\ud800" * 4,  # lone surrogates, 3 bytes each as stored
        "a" * 7 + "\U0001f600",
    ],
)
@pytest.mark.parametrize("limit", [0, 1, 8, 10, 11, 12, 13])
def test_size_over_agrees_with_the_encoded_size(text: str, limit: int) -> None:
    size = encoded_size(text)
    assert size_over(text, limit) == (size if size > limit else 0)


def test_text_of_at_most_a_quarter_of_the_limit_in_characters_is_never_over() -> None:
    assert size_over("\U0001f600" * 25, 100) == 0  # exactly 100 bytes
    assert size_over("\U0001f600" * 26, 100) == 104
