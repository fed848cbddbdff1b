"""GET /docs: the interactive reference, over HTTP and in a real headless browser.

The browser tests run `python -m service serve` on a real port and database and
drive Debian's chromium through chromedriver (Selenium): the page must list every
operation of the /openapi.json it serves (read at test time, so a new route is
checked without touching this file), try one for real, and load nothing from
anywhere but the instance. Without chromium they are skipped, except in CI
(`CI` set), where they fail: .ci/run installs chromium and chromium-driver.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from service.app import create_app
from service.config import Config, Token

from .api import problem
from .test_shutdown import serving

REPO_ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO_ROOT / ".data" / "screenshots"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
WRITER = Token("registrar", "write", "3f9c0b6a1d2e4f5a8b7c6d5e4f3a2b1c")
WAIT = 30  # seconds for the page to render or a tried request to answer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if os.access("/usr/bin/chromedriver", os.X_OK) else None
)


# -- over HTTP ----------------------------------------------------------------------------


async def test_the_page_is_html_under_a_strict_content_security_policy(client):
    response = await client.get("/docs")

    assert response.status == 200
    assert response.content_type == "text/html"
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"  # no inline script, nothing from elsewhere
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert response.headers["Cache-Control"] == "no-cache"
    html = await response.text()
    assert "<script>" not in html  # the start-up code is a file, as the policy demands


async def test_the_page_refers_only_to_files_the_instance_serves(client):
    html = await (await client.get("/docs")).text()
    urls = re.findall(r'(?:src|href)="([^"]*)"', html)

    assert len(urls) >= 4, urls
    for url in urls:
        # Relative to /docs, so it works behind any host name, offline.
        assert not re.match(r"[a-z]+:|//", url), url
        response = await client.get(f"/{url}")
        assert response.status == 200, url


@pytest.mark.parametrize(
    ("asset", "content_type"),
    [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("init.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("favicon-32x32.png", "image/png"),
    ],
)
async def test_a_file_of_the_page_is_cached_then_revalidated(client, asset, content_type):
    response = await client.get(f"/docs/{asset}")

    assert response.status == 200
    assert response.content_type == content_type
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert len(await response.read()) > 0
    again = await client.get(f"/docs/{asset}", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304
    assert await again.read() == b""


@pytest.mark.parametrize(
    "path",
    [
        "/docs/swagger-editor-bundle.js",  # in the package, not served
        "/docs/index.html",
        "/docs/..%2Fopenapi.json",
        "/docs/",
    ],
)
async def test_nothing_else_is_served_under_docs(client, path):
    response = await client.get(path)

    assert response.status == 404
    await problem(response)


async def test_the_page_and_its_files_need_no_token(config: Config, aiohttp_client):
    client = await aiohttp_client(create_app(replace(config, tokens=(WRITER,))))

    for path in ("/docs", "/docs/init.js", "/docs/swagger-ui-bundle.js"):
        response = await client.get(path)
        assert response.status == 200, path
        assert response.headers["Cache-Control"] != "no-store", path
    # A method /docs does not serve is its 405, not a 401.
    assert (await client.post("/docs/init.js")).status == 405
    # The document the page reads declares the bearer scheme its Authorize button uses.
    document = await (await client.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


# -- in a browser -------------------------------------------------------------------------


def need_a_browser() -> None:
    if CHROMIUM and CHROMEDRIVER:
        return
    reason = "no chromium and chromedriver here (Debian: apt-get install chromium chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser test: {reason}")
    pytest.skip(reason)


def start_browser():
    """Headless chromium, its page's network requests and console recorded."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1800",
        # Nothing of the browser's own may go out either: no updates, sync or
        # telemetry, and any address but loopback goes to a proxy that is not there.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--no-first-run",
        "--proxy-server=http://127.0.0.1:9",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    # An explicit driver: Selenium Manager would look for (and download) one.
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def fetch_document(base: str) -> dict:
    with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as response:
        return json.load(response)


def requested_urls(driver) -> list[str]:
    """Every URL the page asked for since the last call (Chrome's DevTools network log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def open_the_page(driver, base: str) -> list[tuple[str, str]]:
    """Load /docs until every operation is drawn; (METHOD, path) of each, as listed."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/docs")
    document = fetch_document(base)
    expected = sum(
        1 for item in document["paths"].values() for method in item if method in HTTP_METHODS
    )
    WebDriverWait(driver, WAIT).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= expected
    )
    listed = []
    for block in driver.find_elements(By.CSS_SELECTOR, ".opblock"):
        method = block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text
        path = block.find_element(By.CSS_SELECTOR, ".opblock-summary-path")
        listed.append((method, path.get_attribute("data-path")))
    return listed


def documented(document: dict) -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    )


def operation_block(driver, document: dict, method: str, path: str):
    """The operation's block, as Swagger UI names it: operations-<tag>-<operationId>."""
    from selenium.webdriver.common.by import By

    operation = document["paths"][path][method.lower()]
    block_id = f"operations-{operation['tags'][0]}-{operation['operationId']}"
    return driver.find_element(By.ID, block_id)


# A textarea's new value, through the setter React watches, then the event it
# listens for: Swagger UI's body editor is a React component.
SET_TEXT = """
const [field, text] = arguments;
Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, "value").set.call(field, text);
field.dispatchEvent(new Event("input", {bubbles: true}));
"""


def try_it_out(driver, block, body: dict | None = None) -> tuple[str, str]:
    """Expand the operation, Try it out, Execute; the status and body the page shows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_for_trying(driver, block)
    if body is not None:
        editor = WebDriverWait(driver, WAIT).until(
            lambda d: block.find_elements(By.CSS_SELECTOR, "textarea.body-param__text")
        )[0]
        # Set as a paste would, in one input event: typed key by key, the
        # editor re-renders on each one (seconds for a long body).
        driver.execute_script(SET_TEXT, editor, json.dumps(body))
    # A response shown from an earlier Execute goes first (its Clear button), so
    # what is read below is the answer to this one.
    for clear in block.find_elements(By.CSS_SELECTOR, "button.btn-clear"):
        clear.click()
    WebDriverWait(driver, WAIT).until(
        lambda d: not block.find_elements(By.CSS_SELECTOR, ".live-responses-table")
    )
    block.find_element(By.CSS_SELECTOR, "button.execute").click()
    cell = WebDriverWait(driver, WAIT).until(
        lambda d: block.find_elements(
            By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
        )
    )[0]
    shown = block.find_element(
        By.CSS_SELECTOR, ".live-responses-table .response .response-col_description pre"
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
    return cell.text.strip(), shown.text


def screenshot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def explore_without_tokens(base: str) -> dict:
    driver = start_browser()
    try:
        listed = open_the_page(driver, base)
        loaded = requested_urls(driver)
        errors = console_errors(driver)
        document = fetch_document(base)
        body = {"name": "Grace Hopper", "email": "grace@example.org"}
        block = operation_block(driver, document, "POST", "/students")
        status, shown = try_it_out(driver, block, body)
        tried = requested_urls(driver)
        return {
            "document": document,
            "listed": listed,
            "loaded": loaded,
            "errors": errors,
            "status": status,
            "shown": shown,
            "tried": tried,
            "screenshot": screenshot(driver, "docs-try-it-out.png"),
        }
    finally:
        driver.quit()


def same_origin(base: str, urls: list[str]) -> list[str]:
    """The URLs that would leave the instance (data: URLs are the style sheet's own icons)."""
    return [url for url in urls if not (url.startswith(f"{base}/") or url.startswith("data:"))]


async def test_the_page_in_a_browser_lists_every_operation_and_tries_one(
    database_url, tmp_path, db
):
    need_a_browser()
    async with serving(database_url, tmp_path) as server:
        seen = await asyncio.to_thread(explore_without_tokens, server.url)

    # Every operation of the document this instance serves, each once.
    assert sorted(seen["listed"]) == documented(seen["document"])
    # The page, its files and the document, all from the instance; no console error
    # (a Content-Security-Policy violation would be one).
    assert same_origin(server.url, seen["loaded"]) == []
    assert {f"{server.url}/docs", f"{server.url}/openapi.json"} <= set(seen["loaded"])
    assert seen["errors"] == []
    # The request really went to the instance, and the page shows its answer.
    assert f"{server.url}/students" in seen["tried"]
    assert same_origin(server.url, seen["tried"]) == []
    assert seen["status"] == "201"
    shown = json.loads(seen["shown"])
    assert shown["name"] == "Grace Hopper"
    assert shown["email"] == "grace@example.org"
    stored = await db.fetchrow("select id, name from students where email = $1", shown["email"])
    assert (stored["id"], stored["name"]) == (shown["id"], "Grace Hopper")
    assert seen["screenshot"].stat().st_size > 0


def explore_with_tokens(base: str, secret: str) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = start_browser()
    try:
        open_the_page(driver, base)
        document = fetch_document(base)
        block = operation_block(driver, document, "GET", "/students")
        before = try_it_out(driver, block)

        driver.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
        field = WebDriverWait(driver, WAIT).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".modal-ux .auth-container input")
        )[0]
        scheme = driver.find_element(By.CSS_SELECTOR, ".modal-ux .auth-container h4").text
        field.send_keys(secret)
        driver.find_element(By.CSS_SELECTOR, ".modal-ux .auth-btn-wrapper .authorize").click()
        driver.find_element(By.CSS_SELECTOR, ".modal-ux .btn-done").click()
        after = try_it_out(driver, block)
        return {
            "before": before,
            "after": after,
            "scheme": scheme,
            "screenshot": screenshot(driver, "docs-authorized.png"),
        }
    finally:
        driver.quit()


async def test_the_authorize_button_sends_a_bearer_token(database_url, tmp_path):
    need_a_browser()
    tokens = f"{WRITER.name}:{WRITER.scope}:{WRITER.secret}"
    async with serving(database_url, tmp_path, API_TOKENS=tokens) as server:
        seen = await asyncio.to_thread(explore_with_tokens, server.url, WRITER.secret)

    # The page itself needed no token; the API behind it still does.
    status, shown = seen["before"]
    assert status == "401"
    assert json.loads(shown)["type"] == "/problems/unauthorized"
    assert "bearerAuth" in seen["scheme"]
    status, shown = seen["after"]
    assert status == "200"
    assert json.loads(shown) == {"items": [], "next_cursor": None}


# -- every operation with a path parameter, tried from the page -----------------------

# What to try each such operation with: its path parameters (named after the
# rows made below) and body; the page's answer is checked against the same
# request sent directly, as curl would. Operations are tried in this order,
# the changes last, each on rows of its own.
TRIED = [
    ("GET", "/students/{student_id}", {"student_id": "ada"}, None),
    ("GET", "/students/{student_id}/courses", {"student_id": "ada"}, None),
    (
        "GET",
        "/students/{student_id}/courses/{course_id}",
        {"student_id": "ada", "course_id": "full"},
        None,
    ),
    ("GET", "/students/{student_id}/waitlist", {"student_id": "waiting"}, None),
    (
        "GET",
        "/students/{student_id}/waitlist/{course_id}",
        {"student_id": "waiting", "course_id": "full"},
        None,
    ),
    ("GET", "/courses/{course_id}", {"course_id": "full"}, None),
    ("GET", "/courses/{course_id}/students", {"course_id": "full"}, None),
    ("GET", "/courses/{course_id}/waitlist", {"course_id": "full"}, None),
    ("POST", "/students/{student_id}/courses", {"student_id": "grace"}, {"course_id": "open"}),
    ("PATCH", "/students/{student_id}", {"student_id": "grace"}, {"name": "Grace B. Hopper"}),
    ("PATCH", "/courses/{course_id}", {"course_id": "open"}, {"title": "Compilers II"}),
    (
        "DELETE",
        "/students/{student_id}/waitlist/{course_id}",
        {"student_id": "leaving", "course_id": "full"},
        None,
    ),
    (
        "DELETE",
        "/students/{student_id}/courses/{course_id}",
        {"student_id": "ada", "course_id": "full"},
        None,
    ),
    ("DELETE", "/courses/{course_id}", {"course_id": "spare"}, None),
    ("DELETE", "/students/{student_id}", {"student_id": "alan"}, None),
    ("GET", "/students/{student_id}/holds", {"student_id": "ada"}, None),
    (
        "GET",
        "/students/{student_id}/holds/{hold_id}",
        {"student_id": "ada", "hold_id": "hold"},
        None,
    ),
    ("POST", "/students/{student_id}/holds", {"student_id": "grace"}, {"reason": "Unpaid fees"}),
    (
        "DELETE",
        "/students/{student_id}/holds/{hold_id}",
        {"student_id": "ada", "hold_id": "spare_hold"},
        None,
    ),
    ("GET", "/students/{student_id}/completions", {"student_id": "ada"}, None),
    (
        "GET",
        "/students/{student_id}/completions/{completion_id}",
        {"student_id": "ada", "completion_id": "completion"},
        None,
    ),
    ("POST", "/students/{student_id}/completions", {"student_id": "grace"}, {"code": "MATH101"}),
    (
        "DELETE",
        "/students/{student_id}/completions/{completion_id}",
        {"student_id": "ada", "completion_id": "spare_completion"},
        None,
    ),
    (
        "GET",
        "/students/{student_id}/terms/{term_id}",
        {"student_id": "ada", "term_id": "term"},
        None,
    ),
    (
        "PUT",
        "/students/{student_id}/terms/{term_id}",
        {"student_id": "grace", "term_id": "term"},
        {"max_credits": 12},
    ),
    ("GET", "/docs/{asset}", {"asset": "init.js"}, None),  # not a row: the value as it is
]


def call(base: str, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    """The request as curl would send it: its status and body."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}{path}", data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def rows(base: str) -> dict[str, int]:
    """Students and courses for TRIED, made through the API; their ids by name."""
    ids = {}
    for name in ("ada", "grace", "waiting", "leaving", "alan"):
        status, body = call(
            base, "POST", "/students", {"name": name, "email": f"{name}@example.org"}
        )
        assert status == 201, body
        ids[name] = json.loads(body)["id"]
    for name, capacity in (("full", 1), ("open", 5), ("spare", 5)):
        course = {"code": name.upper(), "title": name, "capacity": capacity, "waitlist_capacity": 5}
        status, body = call(base, "POST", "/courses", course)
        assert status == 201, body
        ids[name] = json.loads(body)["id"]
    for student in ("ada", "waiting", "leaving"):
        enroll = {"course_id": ids["full"], "waitlist": True}
        status, body = call(base, "POST", f"/students/{ids[student]}/courses", enroll)
        assert status in (201, 202), body
    ada = ids["ada"]
    for name, path, row in (
        ("hold", f"/students/{ada}/holds", {"reason": "Library fine"}),
        ("spare_hold", f"/students/{ada}/holds", {"reason": "Unpaid fees"}),
        ("completion", f"/students/{ada}/completions", {"code": "CS101"}),
        ("spare_completion", f"/students/{ada}/completions", {"code": "CS102"}),
        (
            "term",
            "/terms",
            {
                "code": "2027-SPRING",
                "title": "Spring",
                "starts_on": "2027-01-18",
                "ends_on": "2027-05-14",
            },
        ),
    ):
        status, body = call(base, "POST", path, row)
        assert status == 201, body
        ids[name] = json.loads(body)["id"]
    return ids


def fill_path_parameters(block, values: dict[str, int]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    for name, value in values.items():
        row = block.find_element(
            By.CSS_SELECTOR, f'tr[data-param-name="{name}"][data-param-in="path"]'
        )
        if choices := row.find_elements(By.CSS_SELECTOR, "select"):  # an enum
            Select(choices[0]).select_by_value(str(value))
            continue
        field = row.find_element(By.CSS_SELECTOR, "input")
        field.clear()
        field.send_keys(str(value))
    # A POST's Idempotency-Key comes filled with the document's example: each
    # operation gets a key of its own, as a client would send.
    for row in block.find_elements(
        By.CSS_SELECTOR, 'tr[data-param-name="Idempotency-Key"][data-param-in="header"]'
    ):
        for field in row.find_elements(By.CSS_SELECTOR, "input"):
            field.clear()
            field.send_keys(f"docs-page-{'-'.join(str(v) for v in values.values())}-{id(block)}")


def try_every_path_operation(base: str) -> dict:
    from selenium.webdriver.common.by import By

    driver = start_browser()
    try:
        ids = rows(base)
        open_the_page(driver, base)
        requested_urls(driver)  # what loading the page asked for is not what is checked
        document = fetch_document(base)
        tried = []
        for method, template, parameters, body in TRIED:
            started = time.monotonic()
            values = {name: ids.get(row, row) for name, row in parameters.items()}
            sent = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in (body or {}).items()}
            block = operation_block(driver, document, method, template)
            driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", block)
            open_for_trying(driver, block)
            fill_path_parameters(block, values)
            status, shown = try_it_out(driver, block, sent if body is not None else None)
            urls = requested_urls(driver)
            # What curl gets right now: for a GET the same request (with the
            # page's query parameters), for a change a GET of what it changed.
            path = template.format(**values)
            sent_to = [url.removeprefix(base) for url in urls if urlsplit(url).path == path]
            curl = call(base, "GET", sent_to[0] if method == "GET" and sent_to else path)
            tried.append((method, template, values, status, shown, urls, curl))
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()  # fold it
            print(f"{method} {template}: {time.monotonic() - started:.1f} s")
        screenshot(driver, "docs-path-parameters.png")
        return {"document": document, "ids": ids, "tried": tried}
    finally:
        driver.quit()


def open_for_trying(driver, block) -> None:
    """Expand the operation and press "Try it out": its parameters become inputs."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    if block.get_attribute("class").find("is-open") < 0:
        block.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    button = WebDriverWait(driver, WAIT).until(
        lambda d: block.find_elements(By.CSS_SELECTOR, ".try-out__btn")
    )[0]
    if button.text.strip() == "Try it out":
        button.click()


async def test_every_operation_with_a_path_parameter_can_be_tried_from_the_page(
    database_url, tmp_path
):
    need_a_browser()
    async with serving(database_url, tmp_path) as server:
        seen = await asyncio.to_thread(try_every_path_operation, server.url)
        document = seen["document"]
        # Every such operation of the served document is in TRIED.
        with_parameters = {
            (method.upper(), path)
            for path, item in document["paths"].items()
            for method, operation in item.items()
            if method in HTTP_METHODS
            and any(
                p.get("in") == "path"
                or p.get("$ref", "").rsplit("/", 1)[-1] in ("StudentId", "CourseId")
                for p in operation.get("parameters", [])
            )
        }
        assert with_parameters == {(m, p) for m, p, _, _ in TRIED}
        for method, template, values, status, shown, urls, curl in seen["tried"]:
            path = template.format(**values)
            # The page sent the real path, not the template (with the query
            # parameters' defaults, such as ?limit=50).
            api_calls = [url for url in urls if url.startswith(f"{server.url}/")]
            assert [urlsplit(url).path for url in api_calls] == [path], (method, template, urls)
            assert same_origin(server.url, urls) == []
            curl_status, curl_body = curl
            if method == "GET":
                # The page shows what curl gets for the same request.
                assert status == str(curl_status), (method, path, shown)
                if template.startswith("/docs/"):
                    # The page's highlighter drops the line breaks when read as text.
                    assert "".join(shown.split()) == "".join(curl_body.decode().split()), path
                else:
                    assert json.loads(shown) == json.loads(curl_body), (method, path)
            else:
                # A change answers as the contract says, and took effect.
                expected = {"POST": "201", "PATCH": "200", "PUT": "200", "DELETE": "204"}[method]
                assert status == expected, (method, path, status, shown)
                assert curl_status == (404 if method == "DELETE" else 200), (method, path)
