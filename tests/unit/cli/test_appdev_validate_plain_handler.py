"""`bootstrap validate` passes a plain `def` handler that asks for `db` or `models`, which every worker
refuses at start-up (`jobs.handlers.import_handler`: "is a plain function and asks for models, which
are async ... make it an async function"), so the queue's worker does not start.

README: validate "imports every declared `handler`, as workers import it" and "a plain function
cannot ask for `db` or `models`". Found while writing handlers for an app on the generated package:
validate said "Config: valid", then the worker of the queue stopped at start-up."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bootstrap.cli.main import main
from bootstrap.jobs.handlers import import_handler
from tests.conftest import SHIPPED_CONFIG

HANDLERS = """\
def plain_with_models(models, mailboxId):
    return None
"""


def test_a_plain_handler_asking_for_models_is_a_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "project"
    shutil.copytree(SHIPPED_CONFIG, root / "config")
    (root / "appdev_handlers.py").write_text(HANDLERS)
    queues = root / "config" / "queues.yaml"
    queues.write_text(
        queues.read_text().rstrip("\n")
        + '\n  handled:\n    tasks:\n      sync:\n        handler: "appdev_handlers:plain_with_models"\n'
    )
    monkeypatch.syspath_prepend(str(root))
    with pytest.raises(TypeError, match="plain function and asks for models"):  # what a worker does
        import_handler("appdev_handlers:plain_with_models")
    capsys.readouterr()
    code = main(["validate", "--config", str(root / "config")])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "queues.handled.tasks.sync.handler" in err and "async" in err, err
