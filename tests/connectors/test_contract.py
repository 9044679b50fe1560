"""The shared contract every registered connector meets against its own sandbox.

The per-connector suites (test_<kind>.py) go deeper (incremental reads, idempotent writes, the
vendor's refusals); this one is what a new connector must pass on the day it is registered.
"""

from __future__ import annotations

from datetime import date

import pytest
import requests

from connectors import registry
from connectors.base import CheckResult, ConfigError, MalformedPayload, Page, StreamSpec, TransientError
from connectors.sandboxkit import sandbox_class
from connectors.sandboxkit.kit import Sandbox, run_in_thread

KINDS = sorted(registry.CONNECTORS)


@pytest.fixture(params=KINDS)
def env(request):
    sandbox = sandbox_class(request.param)(data_path=None, seed=3, today=date(2026, 11, 20), n_employees=20, n_lines=60)
    server, url = run_in_thread(sandbox)
    config = {"base_url": url, "client_id": Sandbox.client_id, "client_secret": Sandbox.client_secret, "timeout": 3}
    yield request.param, url, config
    server.shutdown()


def first_page(connector, stream: str) -> Page | None:
    return next(iter(connector.read(stream, None)), None)  # an empty stream may yield no page


def test_check_passes_and_fails_on_bad_credentials_without_raising(env):
    kind, _, config = env
    ok = registry.build(kind, config).check()
    assert isinstance(ok, CheckResult) and ok.ok
    bad = registry.build(kind, {**config, "client_secret": "wrong"}).check()
    assert not bad.ok and bad.message


def test_discover_names_streams_with_canonical_objects(env):
    kind, _, config = env
    streams = registry.build(kind, config).discover()
    assert streams and all(isinstance(s, StreamSpec) and s.name and s.canonical for s in streams)


def test_every_stream_reads_canonical_records(env):
    kind, _, config = env
    connector = registry.build(kind, config)
    for spec in connector.discover():
        page = first_page(connector, spec.name)
        assert page is None or isinstance(page, Page)
        for rec in page.records if page else []:
            assert rec.get(spec.primary_key), (spec.name, rec)


@pytest.mark.parametrize("fault", [{"throttle_rate": 1.0, "retry_after": 7}, {"error_rate": 1.0}, {"down": True}])
def test_throttling_errors_and_outages_are_transient(env, fault):
    kind, url, config = env
    connector = registry.build(kind, config)
    stream = connector.discover()[0].name
    requests.post(f"{url}/sandbox/faults", json=fault, timeout=5).raise_for_status()
    with pytest.raises(TransientError) as exc:
        first_page(connector, stream)
    if "throttle_rate" in fault:
        assert exc.value.retry_after == 7


def test_a_malformed_body_is_malformed_payload_not_a_crash(env):
    kind, url, config = env
    connector = registry.build(kind, config)
    stream = connector.discover()[0].name
    connector.check()  # token first: the fault applies to API calls
    requests.post(f"{url}/sandbox/faults", json={"malformed_rate": 1.0}, timeout=5).raise_for_status()
    with pytest.raises(MalformedPayload):
        first_page(connector, stream)


def test_bad_credentials_on_read_are_a_config_error(env):
    kind, _, config = env
    connector = registry.build(kind, {**config, "client_secret": "wrong"})
    with pytest.raises(ConfigError):
        first_page(connector, connector.discover()[0].name)
