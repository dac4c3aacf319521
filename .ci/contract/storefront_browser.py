"""The example storefront (examples/storefront/) in a real browser: Debian's Chromium loads
the page from its own origin (a static file server on another port), so every call it makes
to the service is a cross-origin request. Against a service whose access tokens live one
second, it signs Anne in through POST /token (after one wrong password), lists her company
users, switches to two of them by token exchange, reads each company, waits until the
company user's access token has expired, reloads the company (the page gets 401, refreshes
and tries again), and signs out; then the refresh tokens the page held are checked to be
revoked. Saves a screenshot.

Usage: storefront_browser.py BASE_URL SCREENSHOT_PATH
"""

import base64
import functools
import http.server
import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from browser import chromium
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

PAGE = Path(__file__).resolve().parents[2] / "examples" / "storefront"
ACME = "72778771-2020-574f-bbaf-05da5889e79e"
BOB_HOTEL = "c7c148a6-5181-5ac4-b2a7-1bf91242ab12"
# The service accepts an access token this long after its `exp` (docs/wire-contract.md §2.1).
LEEWAY_SECONDS = 30


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve_page() -> str:
    """Serve the storefront's files on a free port of 127.0.0.1; returns the page's origin."""
    handler = functools.partial(QuietHandler, directory=str(PAGE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def refresh_answer(base: str, refresh_token: str) -> tuple[int, dict]:
    form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": refresh_token}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{base}/token", data=form)) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


def main(base: str, screenshot: str) -> None:
    origin = serve_page()
    assert urllib.parse.urlsplit(origin).netloc != urllib.parse.urlsplit(base).netloc
    driver = chromium()
    wait = WebDriverWait(driver, 20)
    text = lambda element_id: driver.find_element(By.ID, element_id).text  # noqa: E731
    shows = lambda element_id, value: wait.until(  # noqa: E731
        ready.text_to_be_present_in_element((By.ID, element_id), value)
    )
    session = lambda: json.loads(  # noqa: E731
        driver.execute_script("return sessionStorage.getItem('glue-auth-storefront')") or "null"
    )
    held = []  # every refresh token the page held, to check after the sign-out
    try:
        driver.get(f"{origin}/?api={urllib.parse.quote(base, safe='')}")
        password = wait.until(ready.visibility_of_element_located((By.ID, "password")))
        password.clear()
        password.send_keys("wrong password")
        driver.find_element(By.ID, "sign-in-button").click()
        shows("error", "The user credentials were incorrect.")
        assert session() is None

        password.clear()
        password.send_keys("change123")
        driver.find_element(By.ID, "sign-in-button").click()
        shows("status", "Signed in.")
        assert text("customer-name") == "Anne Boleyn" and text("customer-reference") == "DE--7"
        rows = {
            row.get_attribute("data-company-user"): row.text
            for row in driver.find_elements(By.CSS_SELECTOR, "#memberships tr")
        }
        assert set(rows) == {ACME, BOB_HOTEL}, rows
        assert "Acme Corporation" in rows[ACME] and "BoB-Hotel Mitte Purchasing" in rows[BOB_HOTEL], rows
        assert "default" in rows[BOB_HOTEL], rows

        for company_user, company in ((ACME, "Acme Corporation"), (BOB_HOTEL, "BoB-Hotel Mitte")):
            switch = f'#memberships tr[data-company-user="{company_user}"] button'
            wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, switch))).click()
            shows("company-user-id", company_user)
            shows("company-name", company)
            assert text("company-status") == "approved" and text("error") == ""
            held.append(session()["companyUser"]["refresh"])
        first = session()
        held.append(first["customer"]["refresh"])
        assert claims(first["companyUser"]["access"])["scopes"] == ["company_user"]

        # Wait until the service refuses the company user's access token, then reload.
        expired_at = claims(first["companyUser"]["access"])["exp"] + LEEWAY_SECONDS
        time.sleep(max(0.0, expired_at - time.time()) + 1.5)
        driver.find_element(By.ID, "reload-company").click()
        shows("refresh-count", "1")
        shows("company-name", "BoB-Hotel Mitte")
        assert "GET /companies/mine → 401\n  the access token is no longer accepted: refreshing" in text("log")
        assert text("error") == "", text("error")
        after = session()
        assert after["companyUser"]["refresh"] != first["companyUser"]["refresh"]
        held.append(after["companyUser"]["refresh"])
        driver.save_screenshot(screenshot)

        driver.find_element(By.ID, "sign-out").click()
        shows("status", "Signed out.")
        assert driver.find_element(By.ID, "sign-in").is_displayed() and session() is None
    finally:
        driver.quit()

    # The first company user's refresh token was revoked by the switch to the second, the
    # second's was rotated by the refresh, and the customer's and the last one by the
    # sign-out: none of them works any more.
    for token in held:
        status, body = refresh_answer(base, token)
        assert (status, body.get("error")) == (400, "invalid_request"), (status, body)
    print("storefront: sign-in via /token (wrong password refused), company users, two switches by token")
    print(f"  exchange, company read, refresh after 401, sign-out revoking; cross-origin; screenshot {screenshot}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
