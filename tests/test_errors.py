from __future__ import annotations

from cam_core.errors import first_line


def test_first_line_is_the_reason_in_one_line_or_the_kind_of_error() -> None:
    assert first_line(ValueError("  shape mismatch\n  at layer 3\n")) == "shape mismatch"
    assert first_line(AssertionError()) == "AssertionError"
    assert first_line(RuntimeError("x" * 300)) == "x" * 120
    assert first_line(RuntimeError("x" * 300), limit=10) == "x" * 10
