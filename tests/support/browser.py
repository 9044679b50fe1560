"""Browser helpers for the Playwright tests."""

import re


def login(page, base, username="analyst", password="analyst"):
    page.goto(f"{base}/queue/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/queue/.*"))
