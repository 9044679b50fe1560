"""The closed-loop sandboxes (in-thread servers, real HTTP) shared by the sync tests."""

import pytest

from connectors.business_central.sandbox.server import BusinessCentralSandbox
from connectors.concur.sandbox.server import ConcurSandbox
from connectors.sandboxkit.kit import run_in_thread
from connectors.sandboxkit.world import build_world
from tests.conftest import SMALL_WORLD, TODAY, make_connections


@pytest.fixture
def world():
    return build_world(seed=7, today=TODAY, **SMALL_WORLD)


@pytest.fixture
def erp_sandbox():
    sandbox = BusinessCentralSandbox(data_path=None, seed=7, today=TODAY, **SMALL_WORLD)
    server, url = run_in_thread(sandbox)
    yield sandbox, url
    server.shutdown()


@pytest.fixture
def expense_sandbox():
    sandbox = ConcurSandbox(data_path=None, seed=7, today=TODAY, **SMALL_WORLD)
    server, url = run_in_thread(sandbox)
    yield sandbox, url
    server.shutdown()


@pytest.fixture
def conns(erp_sandbox, expense_sandbox):
    return make_connections(erp_sandbox[1], expense_sandbox[1], timeout=2)
