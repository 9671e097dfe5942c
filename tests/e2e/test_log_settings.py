"""An unknown BOOTSTRAP_LOG_LEVEL, as a whole `bootstrap` process: one line naming the variable,
exit 1, no traceback (it was logging's ValueError traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import SHIPPED_CONFIG, subprocess_env


def test_unknown_log_level_is_one_line_without_traceback(tmp_path: Path) -> None:
    env = subprocess_env(BOOTSTRAP_LOG_LEVEL="verbose")
    env.pop("MONGODB_URI", None)
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "bootstrap", "validate", "--config", str(SHIPPED_CONFIG)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr, done.stderr
    assert "BOOTSTRAP_LOG_LEVEL" in done.stderr, done.stderr
