"""Review rev5: the wider credential mask (option names ending in a secret's word, `:` as a
separator) hides words that are no secret, and shows part of a password it used to hide."""

from __future__ import annotations

from bootstrap.redact import mask


def test_a_key_prefix_ending_in_pass_is_no_secret() -> None:
    # What `bootstrap plan` prints for a project whose `redis.key_prefix` is `compass` (seen).
    line = "  + create stream compass:queue:{delta-sync}:jobs with consumer group workers"
    assert mask(line) == line


def test_a_password_option_with_a_comma_is_masked_whole() -> None:
    shown = mask("Redis redis://127.0.0.1:6379/0?password=Head77,Tail99 not reachable")
    assert "Head77" not in shown
    assert "Tail99" not in shown


def test_a_user_name_ending_in_token_keeps_the_host_shown() -> None:
    shown = mask("MongoDB mongodb://svc_token:S3cret@cluster0.example.net/msedb not reachable")
    assert "S3cret" not in shown
    assert "@cluster0.example.net/msedb" in shown, shown
