"""The sandbox's sign-in pages (``GET|POST /{tenant}/oauth2/v2.0/authorize``): a username and password
form, and the page an authorization request that cannot go back to its application ends on (an
unknown client or reply URL: Entra does not redirect those either). Every value goes through
``html.escape``."""

from __future__ import annotations

from html import escape

from .oidc import SIGN_IN_PASSWORD

STYLE = (
    "<style>body{font:15px system-ui,sans-serif;background:#f2f4f7;margin:0}"
    ".box{max-width:380px;margin:8vh auto;background:#fff;padding:2rem 2.4rem;box-shadow:0 2px 6px #0002}"
    "h1{font-size:1.4rem;margin:.2rem 0 1rem}label{display:block;margin:.8rem 0 .2rem}"
    "input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.45rem;font:inherit}"
    ".row{display:flex;gap:.6rem;justify-content:flex-end;margin-top:1.2rem}button{font:inherit;padding:.4rem 1.2rem}"
    ".primary{background:#0067b8;color:#fff;border:1px solid #0067b8}.error{color:#a80000}"
    "small{color:#5b6b7b}</style>"
)


def sign_in_page(*, ctx: str, action: str, app: str, username: str = "", error: str = "") -> str:
    e = escape
    problem = f"<p class=error role=alert id=error>{e(error)}</p>" if error else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Sign in to your account</title>"
        f"{STYLE}</head><body><div class=box><small>Northwind (identity sandbox)</small>"
        f"<h1>Sign in</h1><p><small>to continue to {e(app)}</small></p>{problem}"
        f'<form method=post action="{e(action)}"><input type=hidden name=ctx value="{e(ctx)}">'
        f'<label for=username>Email or username</label><input type=text id=username name=username value="{e(username)}"'
        " autocomplete=username autofocus required>"
        "<label for=password>Password</label>"
        "<input type=password id=password name=password autocomplete=current-password required>"
        # Sign in first: Enter in a field submits with the form's first button.
        "<div class=row><button class=primary type=submit name=signin value=1>Sign in</button>"
        "<button type=submit name=cancel value=1 formnovalidate>Cancel</button></div></form>"
        f"<p><small>Sandbox: any active directory user signs in with the password "
        f"<code>{e(SIGN_IN_PASSWORD)}</code>.</small></p></div></body></html>"
    )


def error_page(message: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Sign in to your account</title>"
        f"{STYLE}</head><body><div class=box><h1>Sorry, but we're having trouble signing you in.</h1>"
        f"<p class=error id=error>{escape(message)}</p></div></body></html>"
    )


def signed_out_page() -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Signed out</title>"
        f"{STYLE}</head><body><div class=box><h1>You signed out of your account</h1>"
        "<p>It's a good idea to close all browser windows.</p></div></body></html>"
    )
