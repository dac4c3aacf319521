"""Swagger UI in a real browser (Debian's chromium driven by chromedriver): authorize with a
demo customer token, "Try it out" on POST /company-user-access-tokens with Sonia's company
user, and see the 201 in the page. Saves a screenshot.

Usage: swagger_ui_browser.py BASE_URL TOKEN SCREENSHOT_PATH
"""

import json
import sys

from browser import chromium
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

SONIA = "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac"


def main(base: str, token: str, screenshot: str) -> None:
    driver = chromium()
    wait = WebDriverWait(driver, 30)
    try:
        driver.get(f"{base}/docs")
        wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "button.authorize"))).click()
        field = wait.until(ready.visibility_of_element_located((By.CSS_SELECTOR, ".auth-container input")))
        field.send_keys(token)
        driver.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper button.authorize").click()
        driver.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper button.btn-done").click()

        operation = "#operations-company-user-access-tokens-createCompanyUserAccessToken"
        wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, f"{operation} .opblock-summary"))).click()
        wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, f"{operation} button.try-out__btn"))).click()
        body = wait.until(ready.visibility_of_element_located((By.CSS_SELECTOR, f"{operation} textarea.body-param__text")))
        body.clear()
        body.send_keys(json.dumps({"data": {"type": "company-user-access-tokens", "attributes": {"idCompanyUser": SONIA}}}))
        driver.find_element(By.CSS_SELECTOR, f"{operation} button.execute").click()
        row = f"{operation} .live-responses-table tbody tr.response"
        status = wait.until(ready.visibility_of_element_located((By.CSS_SELECTOR, f"{row} td.response-col_status")))
        answer = driver.find_element(By.CSS_SELECTOR, f"{row} td.response-col_description").text
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", status)
        driver.save_screenshot(screenshot)
        assert status.text.strip().startswith("201"), f"status {status.text!r}: {answer}"
        assert '"company-user-access-tokens"' in answer and "accessToken" in answer, answer
        print(f"Swagger UI: authorized, tried POST /company-user-access-tokens, saw 201; screenshot {screenshot}")
    finally:
        driver.quit()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
