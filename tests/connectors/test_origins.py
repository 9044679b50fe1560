"""Credentials stay on the connection's origin: paging links and redirects to elsewhere are refused.

A vendor page (or whatever sits between us and the vendor) names the next page's URL. Following
it to another scheme, host or port would send the connection's bearer token or API key there.
Each test points a real sandbox's link at a second local server, which must receive nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from urllib.parse import urlencode, urlsplit

import pytest

from connectors.base import MalformedPayload
from connectors.business_central.connector import BusinessCentralConnector
from connectors.business_central.sandbox.server import BusinessCentralSandbox
from connectors.concur.connector import ConcurConnector
from connectors.concur.sandbox.server import ConcurSandbox
from connectors.coupa.connector import CoupaConnector
from connectors.coupa.sandbox.server import CoupaSandbox
from connectors.http import HttpClient, same_origin
from connectors.sandboxkit.kit import Request, run_in_thread
from tests.support.fakes import FakeServer

TODAY = date(2026, 11, 20)
Rewrite = Callable[[str], str]


def stop(server) -> None:
    threading.Thread(target=lambda: (server.shutdown(), server.server_close()), daemon=True).start()


def root_relative(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def shouting(link: str) -> str:
    """The same origin, written in capitals: still ours."""
    parts = urlsplit(link)
    return f"HTTP://{parts.netloc.upper()}{parts.path}?{parts.query}"


def elsewhere(other: str) -> dict[str, Rewrite]:
    """Ways a link can name ``other`` (another local server: another port, so another origin)."""
    host = urlsplit(other).netloc

    def absolute(link: str) -> str:
        return other + root_relative(link)

    def scheme_relative(link: str) -> str:
        return f"//{host}{root_relative(link)}"

    def behind_userinfo(link: str) -> str:
        # Starts with our own origin, but the host is what follows the "@".
        return f"http://{urlsplit(link).netloc}@{host}{root_relative(link)}"

    return {"absolute": absolute, "scheme_relative": scheme_relative, "behind_userinfo": behind_userinfo}


@pytest.fixture
def other():
    server = FakeServer()  # answers 404 to everything: it should never be asked
    yield server
    server.close()


# --- Business Central: @odata.nextLink ------------------------------------------------------------


class RewrittenNextLinks(BusinessCentralSandbox):
    rewrite: Rewrite = staticmethod(lambda link: link)

    def _next_link(self, req: Request, resume: str, top: int | None) -> str:
        return self.rewrite(super()._next_link(req, resume, top))


@pytest.fixture
def bc():
    sandbox = RewrittenNextLinks(data_path=None, seed=7, today=TODAY, n_employees=40)
    server, url = run_in_thread(sandbox)
    yield sandbox, url
    stop(server)


def bc_connector(url: str) -> BusinessCentralConnector:
    return BusinessCentralConnector(
        {
            "base_url": url,
            "client_id": "workbench",
            "client_secret": "sandbox-secret",
            "environment": "sandbox",
            "page_size": 10,
            "timeout": 5,
        }
    )


def bc_employees(url: str) -> list[str]:
    return sorted(r["external_id"] for page in bc_connector(url).read("employees", None) for r in page.records)


@pytest.mark.parametrize("how", ["absolute", "scheme_relative", "behind_userinfo"])
def test_bc_refuses_a_next_link_to_another_origin_and_sends_it_nothing(bc, other, how):
    sandbox, url = bc
    sandbox.rewrite = elsewhere(other.url)[how]
    with pytest.raises(MalformedPayload) as exc:
        bc_employees(url)
    assert other.url in str(exc.value) and "another origin" in str(exc.value)
    assert other.seen == []  # not a request, so certainly no bearer token


@pytest.mark.parametrize("rewrite", [root_relative, shouting], ids=["root_relative", "same_origin_in_capitals"])
def test_bc_follows_relative_and_same_origin_next_links(bc, rewrite):
    sandbox, url = bc
    expected = bc_employees(url)  # the sandbox's own absolute links
    assert len(expected) > 10  # more than one page
    sandbox.rewrite = rewrite
    assert bc_employees(url) == expected


def test_bc_check_reports_a_foreign_next_link_instead_of_following_it(bc, other):
    sandbox, url = bc
    sandbox.rewrite = elsewhere(other.url)["absolute"]
    connector = BusinessCentralConnector(
        {"base_url": url, "client_id": "workbench", "client_secret": "sandbox-secret", "page_size": 1, "timeout": 5}
    )  # three companies: the list pages
    result = connector.check()
    assert not result.ok and other.url in result.message
    assert other.seen == []


# --- Concur: links[rel=next] -------------------------------------------------------------------------


class RewrittenConcurLinks(ConcurSandbox):
    rewrite: Rewrite = staticmethod(lambda link: link)

    def _list(self, req: Request):
        body = super()._list(req)
        for link in body["links"]:
            if link["rel"] == "next":
                link["href"] = self.rewrite(link["href"])
        return body


@pytest.fixture
def concur():
    sandbox = RewrittenConcurLinks(data_path=None, seed=7, today=TODAY, n_employees=40, n_lines=300)
    server, url = run_in_thread(sandbox)
    yield sandbox, url
    stop(server)


def concur_docs(url: str) -> list[str]:
    connector = ConcurConnector(
        {"base_url": url, "client_id": "workbench", "client_secret": "sandbox-secret", "page_size": 5, "timeout": 5}
    )
    pages = list(connector.read("expense_reports", None))
    return sorted(
        [r["external_id"] for p in pages for r in p.records] + [e.external_id for p in pages for e in p.errors]
    )


@pytest.mark.parametrize("how", ["absolute", "scheme_relative", "behind_userinfo"])
def test_concur_refuses_a_next_link_to_another_origin(concur, other, how):
    sandbox, url = concur
    sandbox.rewrite = elsewhere(other.url)[how]
    with pytest.raises(MalformedPayload) as exc:
        concur_docs(url)
    assert other.url in str(exc.value) and "FIS next link" in str(exc.value)
    assert other.seen == []


@pytest.mark.parametrize("rewrite", [root_relative, shouting], ids=["root_relative", "same_origin_in_capitals"])
def test_concur_follows_relative_and_same_origin_next_links(concur, rewrite):
    sandbox, url = concur
    expected = concur_docs(url)
    assert len(expected) > 5
    sandbox.rewrite = rewrite
    assert concur_docs(url) == expected


# --- redirects: requests keeps custom headers (Coupa's API key) across hosts -----------------------


class RedirectingCoupa(CoupaSandbox):
    target = ""  # where GET /api/suppliers redirects to, once

    def _list(self, coll: str, req: Request):
        if coll == "suppliers" and "redirected" not in req.query:
            query = urlencode({**req.query, "redirected": "1"})
            return 302, b"", {"Location": f"{self.target}{req.path}?{query}"}
        req.query.pop("redirected", None)
        return super()._list(coll, req)


@pytest.fixture
def coupa():
    sandbox = RedirectingCoupa(data_path=None, seed=3, today=TODAY, n_employees=20, n_lines=0)
    server, url = run_in_thread(sandbox)
    yield sandbox, url
    stop(server)


def test_a_redirect_to_another_origin_is_refused_before_the_api_key_goes_there(coupa, other):
    sandbox, url = coupa
    sandbox.target = other.url
    connector = CoupaConnector({"base_url": url, "api_key": "sandbox-secret", "timeout": 5})
    with pytest.raises(MalformedPayload) as exc:
        list(connector.read("suppliers", None))
    assert other.url in str(exc.value)
    assert other.seen == []  # before the fix it received X-COUPA-API-KEY: sandbox-secret


def test_a_redirect_within_the_origin_is_followed(coupa):
    _, url = coupa
    connector = CoupaConnector({"base_url": url, "api_key": "sandbox-secret", "timeout": 5})
    assert [r for page in connector.read("suppliers", None) for r in page.records]


# --- the shared rule --------------------------------------------------------------------------------


def test_same_origin_resolves_links_against_the_base_url():
    base = "https://api.example.com:443/v2.0/prod/api/v2.0"
    assert (
        same_origin(base, "companies(1)/vendors?$skiptoken=2")
        == "https://api.example.com:443/v2.0/prod/api/v2.0/companies(1)/vendors?$skiptoken=2"
    )
    assert same_origin(base, "/v2.0/prod/api/v2.0/x") == "https://api.example.com:443/v2.0/prod/api/v2.0/x"
    assert same_origin(base, "https://API.example.com/x") == "https://API.example.com/x"  # default port
    for link in (
        "http://api.example.com/x",
        "https://api.example.com:8443/x",
        "https://evil.example.com/x",
        "//evil.example.com/x",
        "https://api.example.com@evil.example.com/x",
    ):
        with pytest.raises(MalformedPayload, match="another origin"):
            same_origin(base, link)
    for link in ("", None, 42):
        with pytest.raises(MalformedPayload):
            same_origin(base, link)


def test_the_client_refuses_absolute_urls_on_another_origin():
    client = HttpClient("http://127.0.0.1:8000/api", token_url="", client_id="", client_secret="")
    assert client.url("/users") == "http://127.0.0.1:8000/api/users"
    assert client.url("http://127.0.0.1:8000/other/api") == "http://127.0.0.1:8000/other/api"
    with pytest.raises(MalformedPayload, match="127.0.0.1:9000"):
        client.url("http://127.0.0.1:9000/api/users")
