"""A newcomer's first commands: quiet `make`, one line per log message, a README that tells."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_says_nothing_about_pythons_that_are_not_installed(tmp_path):
    # A pyenv shim for a Python that is not installed: found by `command -v`, complains when run.
    shim = tmp_path / "python3.13"
    shim.write_text('#!/bin/sh\necho "pyenv: python3.13: command not found" >&2\nexit 127\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    env.pop("PYTHON", None)
    result = subprocess.run(["make", "-n", "run", "test"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert "command not found" not in result.stdout + result.stderr


def test_the_licence_is_an_spdx_string():
    """setuptools >= 77 warns on every install about `license = { text = ... }`."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "AGPL-3.0-or-later"
    assert any(req.replace(" ", "").startswith("setuptools>=77") for req in project["build-system"]["requires"])


def test_a_django_log_line_is_printed_once():
    code = ("import django, logging; django.setup(); "
            "logging.getLogger('django.utils.autoreload').info('Watching for file changes with StatReloader')")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "DJANGO_SETTINGS_MODULE": "cvm.settings", "PYTHONPATH": str(ROOT)})
    assert (result.stdout + result.stderr).count("Watching for file changes") == 1, result.stderr


def test_the_readme_tells_port_host_and_how_to_run_the_service_tests():
    readme = (ROOT / "README.md").read_text()
    assert "make run PORT=8080" in readme and "HOST=0.0.0.0" in readme
    assert "CVM_TEST_REDIS_URL=redis://127.0.0.1:6390/0 make test" in readme
    assert "CREATE ROLE cvm LOGIN CREATEDB" in readme
