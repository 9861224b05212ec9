"""Feed previews as a person sees them: loaded in headless Chromium (Debian's),
asserting on what is rendered. The screenshot goes to a temporary folder, never
the repository."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright

from conftest import BUNDLED_SEEDS, FIXTURE_SEEDS, free_port, write_config

CHROMIUM = "/usr/bin/chromium"
# Quiet and local: no background services, nothing but 127.0.0.1 (see the route below).
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A server over the bundled seeds (unpublished included) and the hostile corpus."""
    from conftest import _server_starter
    import shutil

    folder = tmp_path_factory.mktemp("preview")
    seeds = folder / "seeds"
    shutil.copytree(BUNDLED_SEEDS, seeds)
    shutil.copytree(FIXTURE_SEEDS / "hostile", seeds / "hostile")
    port = free_port()
    config = write_config(folder / "c.toml", seeds, base_url=f"http://127.0.0.1:{port}",
                          seeds_extra="include_unpublished = true")
    start, started = _server_starter(folder)
    yield start(config, port)
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def open_page(browser, url: str, width: int):
    page = browser.new_page(viewport={"width": width, "height": 900})
    blocked: list[str] = []
    errors: list[str] = []

    def local_only(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:  # article images live on the open web: the tests stay on 127.0.0.1
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    return page, blocked, errors


@pytest.mark.parametrize("width", [390, 1280])
def test_preview_renders_every_entry_readably(site, browser, tmp_path, width):
    """Every entry of the feed is on the page, in order, with its title linked; nothing overflows
    the viewport (phone and desktop widths); no script runs; a screenshot is taken."""
    items = json.loads(site.get("/feeds/all.json")[2])["items"]
    page, blocked, errors = open_page(browser, site.url("/feeds/all.html"), width)
    titles = page.locator("article h2 a").all_inner_texts()
    assert titles == [item["title"] for item in items]
    assert page.locator("article h2 a").first.get_attribute("href") == items[0]["url"]
    assert page.title() == page.locator("h1").inner_text()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    widest_image = page.evaluate("Math.max(0, ...[...document.images].map(i => i.getBoundingClientRect().right))")
    assert widest_image <= width
    font_px = float(page.evaluate("getComputedStyle(document.querySelector('article')).fontSize").removesuffix("px"))
    assert font_px >= 15  # readable body text
    assert errors == []
    assert page.evaluate("document.scripts.length") == 0
    assert all(not url.startswith(site.base) for url in blocked)
    shot = tmp_path / f"preview-{width}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()


def test_preview_shows_how_to_subscribe(site, browser):
    """The subscribe box is visible at the top, with the three formats and the address to copy."""
    page, _, _ = open_page(browser, site.url("/feeds/topics/ai.html"), 1280)
    box = page.locator("#subscribe")
    assert box.is_visible() and box.bounding_box()["y"] < 600
    assert box.locator("a").all_inner_texts() == ["Atom", "RSS", "JSON Feed"]
    assert box.locator("input").input_value() == site.url("/feeds/topics/ai.atom")
    page.close()


def test_hostile_entries_render_inert(site, browser):
    """Entries from the hostile corpus render as text: no dialog opens, no element carries a handler."""
    page, _, errors = open_page(browser, site.url("/feeds/all.html"), 1280)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.reload()
    handlers = page.evaluate("""[...document.querySelectorAll('*')].flatMap(e =>
        [...e.attributes].filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name))""")
    assert handlers == [] and dialogs == [] and errors == []
    assert page.locator("iframe, object, embed, form, svg").count() == 0
    page.close()
