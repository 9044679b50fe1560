"""The dependency direction (.importlinter) covers every module: a new workbench module is either in
the domain's contract or is one of the few that sit above it (screens, settings, the WSGI entry)."""

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ABOVE_THE_DOMAIN = {"web", "settings", "wsgi"}  # may import sync (web) or name it in strings (settings)


def test_every_workbench_module_is_under_a_contract():
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    domain = {m.strip() for m in config["importlinter:contract:domain"]["source_modules"].split() if m.strip()}
    modules = {p.stem for p in (ROOT / "workbench").glob("*.py") if p.stem != "__init__"}
    modules |= {p.name for p in (ROOT / "workbench").iterdir() if (p / "__init__.py").exists()}
    uncovered = sorted(m for m in modules - ABOVE_THE_DOMAIN if f"workbench.{m}" not in domain)
    assert not uncovered, f"add these to the domain contract in .importlinter (or move them): {uncovered}"
