"""A failed job's error and traceback are kept bounded in its record and log lines, masked before
they are cut (a URL cut before its `@host` would no longer be recognised as one)."""

from __future__ import annotations

from bootstrap.jobs.middleware import ERROR_KEPT, TRACEBACK_KEPT, _error, _traceback


def _raised(message: str) -> BaseException:
    try:
        raise RuntimeError(message)
    except RuntimeError as exc:
        return exc


def test_a_short_error_is_kept_whole_and_masked() -> None:
    error = _raised("cannot reach redis://app:s3cret@cache:6379/0")
    assert _error(error) == "RuntimeError: cannot reach redis://app:****@cache:6379/0"
    assert "s3cret" not in _traceback(error) and "Traceback (most recent call last)" in _traceback(error)


def test_a_huge_error_is_cut_after_masking_a_url_across_the_cut() -> None:
    # Cut first, the kept text would end in ` redis://app:s3c`: a password's head, and no `@host`
    # left for the mask to know it by.
    padding = "x" * (ERROR_KEPT - len("RuntimeError: ") - len(" redis://app:s3c"))
    error = _raised(padding + " redis://app:s3cretpassword@cache:6379/0 " + "y" * 5_000_000)
    kept = _error(error)
    assert "s3c" not in kept and kept.split(" [")[0].endswith(" redis://app:***")
    assert kept.startswith("RuntimeError: xxx") and kept.endswith("more characters not kept]")
    assert len(kept) < ERROR_KEPT + 100


def test_a_huge_traceback_keeps_its_frames_and_its_last_line() -> None:
    traceback = _traceback(_raised("z" * 1_000_000 + " the end"))
    assert traceback.startswith("Traceback (most recent call last)") and "_raised" in traceback
    assert traceback.rstrip().endswith("the end") and "characters not kept" in traceback
    assert len(traceback) < TRACEBACK_KEPT + 100
