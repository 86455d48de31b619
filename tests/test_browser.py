"""Real-browser test: ``streamlit run`` headless, Debian chromium driven by Playwright."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from PIL import Image

from dashboard import pages as registry

REPO = Path(__file__).resolve().parents[1]
DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "tests" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
TEXTS = {
    "overview": "Validation images",
    "summary": "Which explanation to believe",
    "misclassified": "validation images are misclassified",
    "heatmaps": "Difference map",
    "gallery": "images match the filter",
    "review": "judged",
    "breeds": "Worst errors per breed",
    "embedding": "Odd ones out and near-copies",
    "shortcuts": "Weak slices",
    "compare": "insertion AUC:",
    "quality": "Deletion and insertion, step by step",
    "calibration": "Confidently wrong",
    "try": "Upload images",
}
"""A text each page shows once it has rendered, by slug (every page of the registry)."""
PAGES = [
    ("" if spec.default else Path(spec.script).stem, spec.title, TEXTS[spec.slug])
    for spec in registry.PAGES
]

pytestmark = pytest.mark.browser
T = TypeVar("T")


def _in_own_thread(work: Callable[[], T]) -> T:
    """Run ``work`` in a thread of its own: the module's Playwright (the ``page`` fixture) keeps
    an event loop in the main thread, where another Playwright cannot start."""
    result: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # noqa: BLE001  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(env: dict[str, str], port: int, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "dashboard/app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            *extra,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _healthy(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.read().strip() == b"ok":
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"streamlit did not become healthy:\n{output[-3000:]}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def server(quick_run: Path) -> Iterator[str]:
    port = _free_port()
    process = _start({**os.environ, "CAM_LENS_HOME": str(quick_run.parents[1])}, port)
    url = f"http://127.0.0.1:{port}"
    try:
        _healthy(process, url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        # `make test` provides a browser first (tests/ensure_browser.sh): Debian's chromium,
        # else the one `playwright install chromium` put in Playwright's own folder.
        executable = str(DEBIAN_CHROMIUM) if DEBIAN_CHROMIUM.exists() else None
        browser = driver.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        yield context.new_page()
        browser.close()


@pytest.mark.parametrize(("path", "title", "text"), PAGES)
def test_each_page_in_a_real_browser(
    server: str, page: object, path: str, title: str, text: str
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(f"{server}/{path}")
    expect(page.get_by_role("heading", name=title).first).to_be_visible(timeout=60_000)
    expect(page.get_by_text(text).first).to_be_visible(timeout=60_000)
    page.wait_for_timeout(1500)
    assert "Traceback" not in page.content()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{path or 'overview'}.png"), full_page=True)


def test_upload_in_a_real_browser(server: str, page: object, tmp_path: Path) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    photo = tmp_path / "my_photo.png"
    Image.new("RGB", (120, 90), (30, 160, 90)).save(photo)
    page.goto(f"{server}/try_photos")
    expect(page.get_by_text("Upload images").first).to_be_visible(timeout=60_000)
    page.locator('input[type="file"]').set_input_files(str(photo))
    expect(page.get_by_text("my_photo.png:").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Probabilities").first).to_be_visible(timeout=60_000)
    assert "Traceback" not in page.content()
    page.screenshot(path=str(SHOTS / "try_photos_upload.png"), full_page=True)


def test_clicking_a_confusion_cell_opens_the_filtered_gallery(
    server: str, page: object, quick_run: Path
) -> None:
    from playwright.sync_api import Page, expect

    from cam_core.analysis.artifacts import read_artifacts

    assert isinstance(page, Page)
    table = read_artifacts(quick_run / "artifacts").table
    expected = int(((table["label"] == "cat") & (table["pred"] == "dog")).sum())
    page.goto(server)
    points = page.locator(".js-plotly-plot .scatterlayer path.point")
    expect(points.first).to_be_attached(timeout=60_000)
    points.nth(1).click(force=True)  # cells are (true, predicted): cat→cat, cat→dog, …
    expect(page.get_by_role("heading", name="Gallery").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text(f"{expected} of {len(table)} images match").first).to_be_visible(
        timeout=60_000
    )


def test_switching_to_the_breed_task_in_a_real_browser(server: str, page: object) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(f"{server}/breeds")
    expect(page.get_by_text("breeds under the species task").first).to_be_visible(timeout=60_000)
    # The page's first select box is the sidebar's artifact folder.
    page.get_by_role("combobox").first.click()
    page.get_by_role("option", name="demo/breed/artifacts").click()
    expect(page.get_by_text("breeds under the breed task").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Task: breed").first).to_be_visible(timeout=60_000)
    assert "Traceback" not in page.content()
    page.screenshot(path=str(SHOTS / "breeds_breed_task.png"), full_page=True)


def test_a_verdict_survives_a_new_browser_and_deep_links_open_the_image(
    server: str, page: object, quick_run: Path, tmp_path: Path
) -> None:
    from urllib.parse import urlencode

    from playwright.sync_api import Page, expect

    from cam_core.analysis.artifacts import read_artifacts
    from cam_core.cli import main
    from cam_core.review.selection import errors

    assert isinstance(page, Page)
    browser = page.context.browser
    assert browser is not None
    folder = quick_run / "artifacts"
    table = read_artifacts(folder).table
    wrong = errors(table, "loss")
    assert len(wrong), "the quick model made no error to review"
    name = str(wrong["path"].iloc[0]).rsplit("/", 1)[-1]

    first_context = browser.new_context(viewport={"width": 1400, "height": 1000})
    first = first_context.new_page()
    first.goto(f"{server}/review")
    expect(first.get_by_text(name, exact=True).first).to_be_visible(timeout=60_000)
    first.get_by_role("button", name="Label error").click()
    expect(first.get_by_text("Image 2 of").first).to_be_visible(timeout=60_000)
    first_context.close()

    # A new browser context (no session, no cookies) opening a link to that image.
    second_context = browser.new_context(viewport={"width": 1400, "height": 1000})
    second = second_context.new_page()
    link = urlencode({"page": "heatmaps", "analysis": str(folder), "image": name})
    second.goto(f"{server}/?{link}")
    expect(second.get_by_role("heading", name="Class heatmaps").first).to_be_visible(timeout=60_000)
    picker = second.locator("[data-testid='stMain'] [data-testid='stSelectbox']").first
    expect(picker.locator("input").first).to_have_value(re.compile(re.escape(name)), timeout=60_000)
    verdict_line = second.get_by_text(re.compile(r"label error · .*by \S+, 20\d\d"))
    expect(verdict_line.first).to_be_visible(timeout=60_000)
    assert "page=heatmaps" in second.url and "image=" in second.url
    SHOTS.mkdir(exist_ok=True)
    second.screenshot(path=str(SHOTS / "verdict.png"), full_page=True)
    second_context.close()

    out = tmp_path / "verdicts.csv"
    assert main(["reviews", "export", "--artifacts", str(folder), "--out", str(out)]) == 0
    exported = out.read_text()
    assert name in exported and "label error" in exported


def test_only_shared_folders_open_in_a_real_browser(
    server: str, page: object, quick_run: Path, tmp_path: Path
) -> None:
    """Typed paths (outside, a `..` escape, a symlink escape, a symlink inside the root that
    leads to an analysis) and a link with an outside ``analysis=``, as a visitor would."""
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    root = Path(os.environ["CAM_LENS_ROOTS"])  # what the server shares (the tests' root)
    outside = root.parent
    (tmp_path / "escape").symlink_to(outside)
    (tmp_path / "inside").symlink_to(quick_run / "artifacts")
    refused = "this folder is outside the folders this server shares"
    typed = [
        (outside, False),
        (tmp_path / ".." / ".." / ".." / outside.name, False),
        (tmp_path / "escape", False),
        (tmp_path / "inside", True),
    ]
    for path, opens in typed:
        page.goto(f"{server}/")
        expect(page.get_by_role("heading", name="Overview").first).to_be_visible(timeout=60_000)
        page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.click()
        page.get_by_role("option", name="Another folder…").click()
        box = page.get_by_role("textbox", name="Folder path")
        box.fill(str(path))
        box.press("Enter")
        if opens:
            expect(page.get_by_text("Validation images").first).to_be_visible(timeout=60_000)
            assert refused not in page.content()
        else:
            expect(page.get_by_text(refused).first).to_be_visible(timeout=60_000)
    page.goto(f"{server}/?page=gallery&analysis={outside}")
    expect(page.get_by_text(refused).first).to_be_visible(timeout=60_000)
    assert "Traceback" not in page.content()


def _sign_in_as_each(app: str) -> None:
    """Sign in as a reviewer, then as a viewer, each in a fresh browser context."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as driver:
        executable = str(DEBIAN_CHROMIUM) if DEBIAN_CHROMIUM.exists() else None
        browser = driver.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        for email, reviewer in (("alice@lab.org", True), ("bob@lab.org", False)):
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.goto(app)
            page.get_by_role("button", name="Sign in").click(timeout=60_000)
            page.locator("input[name=sub]").fill(email, timeout=30_000)
            page.locator("form button[type=submit], form input[type=submit]").first.click()
            expect(page.get_by_text(f"({email})").first).to_be_visible(timeout=60_000)
            page.goto(f"{app}/review")
            expect(page.get_by_role("heading", name="Review errors").first).to_be_visible(
                timeout=60_000
            )
            verdict = page.get_by_role("button", name="Fine", exact=True)
            if reviewer:
                verdict.click()
                page.wait_for_timeout(3000)
            else:
                expect(page.get_by_text("You are a viewer").first).to_be_visible()
                assert verdict.count() == 0
            assert "Traceback" not in page.content()
            context.close()
        browser.close()


def test_sign_in_against_a_local_openid_provider_as_reviewer_and_viewer(
    tiny_artifacts_dir: Path, tmp_path: Path
) -> None:
    """OpenID Connect sign-in through a provider started here (oidc-provider-mock): a reviewer
    records a verdict under the signed-in identity; a viewer reads and records nothing."""
    import shutil

    from oidc_provider_mock import run_server_in_thread

    from cam_core.analysis.artifacts import read_manifest
    from cam_core.review.reviews import ReviewStore

    home = tmp_path / "home"
    shutil.copytree(tiny_artifacts_dir, home / "team" / "artifacts")
    port = _free_port()
    app = f"http://localhost:{port}"
    with run_server_in_thread() as provider:
        secrets = tmp_path / "secrets.toml"
        secrets.write_text(
            "[auth]\n"
            f'redirect_uri = "{app}/oauth2callback"\n'
            'cookie_secret = "a-long-random-test-secret-0123456789"\n'
            'client_id = "cam-lens"\n'
            'client_secret = "test-secret"\n'
            f'server_metadata_url = "http://localhost:{provider.server_port}'
            '/.well-known/openid-configuration"\n'
            "[cam_lens]\n"
            'reviewers = ["alice@lab.org"]\n'
            'viewers = ["lab.org"]\n'
        )
        env = {**os.environ, "CAM_LENS_HOME": str(home), "CAM_LENS_ROOTS": str(tmp_path)}
        process = _start(env, port, "--secrets.files", str(secrets))
        try:
            _healthy(process, f"http://127.0.0.1:{port}")
            _in_own_thread(lambda: _sign_in_as_each(app))
        finally:
            process.terminate()
            process.wait(timeout=20)
    folder = home / "team" / "artifacts"
    saved = ReviewStore.beside(folder, read_manifest(folder).model_sha256).all()
    assert [review.reviewer for review in saved.values()] == ["alice@lab.org"]


def test_twenty_browser_sessions_at_once_lose_no_verdict(
    tiny_artifacts_dir: Path, tmp_path: Path
) -> None:
    """20 real browser sessions (one Chromium, 20 contexts) open a page and then record a
    verdict on the Review page at the same time: every save is kept (the image's history has
    all 20), no session shows an error. Prints the slowest page seen (no timing assert)."""
    import asyncio
    import shutil

    from playwright.async_api import async_playwright

    from cam_core.analysis.artifacts import read_manifest
    from cam_core.review.reviews import ReviewStore

    home = tmp_path / "home"
    folder = home / "team" / "artifacts"
    shutil.copytree(tiny_artifacts_dir, folder)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CAM_LENS_HOME": str(home), "CAM_LENS_ROOTS": str(tmp_path)}
    process = _start(env, port)
    pages = ["", "gallery", "summary", "heatmaps", "compare"]

    async def session(browser: object, index: int) -> tuple[float, str]:
        context = await browser.new_context(viewport={"width": 1300, "height": 900})  # type: ignore[attr-defined]
        page = await context.new_page()
        try:
            start = time.perf_counter()
            await page.goto(f"{url}/{pages[index % len(pages)]}", timeout=240_000)
            await page.get_by_role("heading").first.wait_for(timeout=240_000)
            await page.wait_for_load_state("networkidle", timeout=240_000)
            first = time.perf_counter() - start
            start = time.perf_counter()
            await page.goto(f"{url}/review", timeout=240_000)
            button = page.get_by_role("button", name="Ambiguous", exact=True)
            await button.wait_for(timeout=240_000)
            review = time.perf_counter() - start
            name = page.get_by_role("textbox", name="Your name")  # a new page, a new session
            await name.fill(f"analyst{index}", timeout=240_000)
            await name.press("Enter")
            await _settled(page)
            await button.click(timeout=240_000)
            # Saved: the page moves on to the next image of the queue.
            moved = page.get_by_text("Image 2 of", exact=False).first
            try:
                await moved.wait_for(timeout=240_000)
            except Exception:  # noqa: BLE001
                return max(first, review), f"analyst{index}: the page did not move on"
            content = await page.content()
            trouble = "Traceback" in content or "was not saved" in content
            return max(first, review), f"analyst{index}: error on the page" if trouble else ""
        finally:
            await context.close()

    async def _settled(page: object) -> None:
        """Wait until the session's script has finished its run (no "Running…" widget)."""
        await page.wait_for_timeout(500)  # type: ignore[attr-defined]
        running = page.get_by_test_id("stStatusWidget")  # type: ignore[attr-defined]
        await running.wait_for(state="hidden", timeout=240_000)

    async def everyone() -> list[tuple[float, str]]:
        async with async_playwright() as driver:
            executable = str(DEBIAN_CHROMIUM) if DEBIAN_CHROMIUM.exists() else None
            browser = await driver.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
            try:
                return list(await asyncio.gather(*(session(browser, i) for i in range(20))))
            finally:
                await browser.close()

    try:
        _healthy(process, url)
        results = _in_own_thread(lambda: asyncio.run(everyone()))
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert [problem for _, problem in results if problem] == []
    store = ReviewStore.beside(folder, read_manifest(folder).model_sha256)
    saved = store.all()
    assert len(saved) == 1  # every session judged the Review page's first image
    (review,) = saved.values()
    history = store.history(review.path)
    assert len(history) == 20 and {h["reviewer"] for h in history} == {
        f"analyst{i}" for i in range(20)
    }
    print(f"slowest page of 20 concurrent browser sessions: {max(s for s, _ in results):.1f} s")
