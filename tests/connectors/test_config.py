"""Every registered connector reads its config the same way (``connectors.base.ConfigReader``): a bad
value is a ``ConfigError`` naming the key, raised when the connector is built (no request made)."""

from __future__ import annotations

import math

import pytest

from connectors import registry
from connectors.base import ConfigError, ConfigReader

KINDS = sorted(registry.CONNECTORS)
GOOD = {"base_url": "http://127.0.0.1:9", "client_id": "workbench", "client_secret": "sandbox-secret", "timeout": 3}


def build(kind: str, **changes):
    config = {k: v for k, v in {**GOOD, **changes}.items() if v is not ...}
    return registry.build(kind, config)


@pytest.mark.parametrize("kind", KINDS)
def test_a_good_config_builds_and_numbers_may_come_as_text(kind):
    assert build(kind).kind == kind
    connector = build(kind, page_size="25", timeout="7.5", base_url="https://erp.example.com:8443/root/")
    assert connector.page_size == 25


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", ["abc", 0, -1, 2.5, True, [10]])
def test_a_bad_page_size_is_a_config_error_naming_it(kind, value):
    with pytest.raises(ConfigError, match="'page_size'"):
        build(kind, page_size=value)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", [-1, 0, "abc", "nan", math.inf, True, {"read": 5}])
def test_a_bad_timeout_is_a_config_error_naming_it(kind, value):
    with pytest.raises(ConfigError, match="'timeout'"):
        build(kind, timeout=value)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "value",
    [
        ...,
        None,
        "",
        "ftp://erp.example.com",
        "erp.example.com:8000",
        "http://",
        "file:///etc/passwd",
        "http://erp.example.com/?tenant=x",
        42,
    ],
)
def test_a_missing_or_non_http_base_url_is_a_config_error_naming_it(kind, value):
    with pytest.raises(ConfigError, match="'base_url'"):
        build(kind, base_url=value)


@pytest.mark.parametrize("kind", KINDS)
def test_missing_credentials_and_a_config_that_is_not_an_object_are_config_errors(kind):
    with pytest.raises(ConfigError, match="client_id|client_secret|token|api_key"):
        build(kind, client_id=..., client_secret=...)
    with pytest.raises(ConfigError):
        registry.build(kind, ["base_url", "http://127.0.0.1:9"])


def test_the_reader_caps_page_sizes_at_the_vendor_maximum_and_keeps_defaults():
    cfg = ConfigReader("x", {"page_size": 500, "timeout": None, "base_url": "HTTPS://Host.example/"})
    assert cfg.positive_int("page_size", 50, maximum=100) == 100
    assert cfg.positive_int("missing", 50) == 50
    assert cfg.timeout() == 30.0
    assert cfg.url() == "HTTPS://Host.example"
    assert cfg.text("scope", "default") == "default"
    with pytest.raises(ConfigError, match="x config 'client_id' is missing"):
        cfg.text("client_id")
