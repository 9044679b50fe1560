"""Production mode from the environment: with PRODUCTION=1 and a real SECRET_KEY Django's deployment check
is clean; without a SECRET_KEY the settings refuse to load and say which variable is missing."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Decided per test; DJANGO_ALLOW_ASYNC_UNSAFE is the browser tests' (tests/run.sh) and never a deployment's.
LEFT_BEHIND = ("PRODUCTION", "DJANGO_ENV", "DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE")


def deploy_check(**env) -> subprocess.CompletedProcess:
    # The rest of the environment (DATABASE_URL, REDIS_URL, VAR_DIR...) goes along as it is.
    base = {k: v for k, v in os.environ.items() if k not in LEFT_BEHIND}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**base, "DEBUG": "0", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def random_key() -> str:
    return secrets.token_urlsafe(48)[:60]


def test_production_mode_passes_the_deploy_check():
    result = deploy_check(PRODUCTION="1", SECRET_KEY=random_key())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_django_env_production_is_production_mode_too():
    result = deploy_check(DJANGO_ENV="production", SECRET_KEY=random_key())
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_mode_without_a_secret_key_refuses_to_start_and_names_it():
    result = deploy_check(PRODUCTION="1")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "SECRET_KEY" in result.stderr


def test_without_production_mode_the_deploy_check_has_findings():
    """The check is not clean by accident: the development defaults (no HTTPS, no HSTS) fail it."""
    result = deploy_check(SECRET_KEY=random_key())
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout  # SECURE_HSTS_SECONDS
