"""A sandbox writes the vendor's JSON with its own code: it never imports the product's connector,
mapping or HTTP modules. A sandbox built with our mapping would agree with any bug in it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.sandboxkit import SANDBOXES

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("connectors.registry", "connectors.http")  # plus every connectors.<vendor>.connector / .mapping


@pytest.mark.parametrize("kind", sorted(SANDBOXES))
def test_a_sandbox_imports_nothing_of_the_product(kind):
    module = SANDBOXES[kind].partition(":")[0]
    script = (
        f"import importlib, json, sys; importlib.import_module({module!r}); "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('connectors.'))))"
    )
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    )
    product = [m for m in loaded if m in PRODUCT or m.rsplit(".", 1)[-1] in ("connector", "mapping")]
    assert product == [], f"{module} imports {product}"
