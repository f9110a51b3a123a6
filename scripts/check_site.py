"""The built site in a real browser (Debian's chromium driven by playwright): every page loads with no console
error and no request that leaves the site, every image is decoded, every formula is typeset by MathJax, the
navigation and the search work. Screenshots of three pages are kept under site/screenshots/ (CI artefacts).

    python scripts/check_site.py [site] [--browser /usr/bin/chromium]

Exit status 1 lists every problem, page by page.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

SCREENSHOTS = ("index.html", "concepts/theory/index.html", "studies/manifold_dim/index.html")

# Run in the page once it has loaded: images not decoded, formulas MathJax left as text or marked as errors.
PAGE_PROBLEMS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const out = [];
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) out.push(`image not decoded: ${img.getAttribute("src")}`);
  }
  for (const el of document.querySelectorAll(".arithmatex")) {
    if (!el.querySelector("mjx-container")) out.push(`formula not rendered: ${el.textContent.slice(0, 60)}`);
  }
  for (const el of document.querySelectorAll("mjx-merror, [data-mjx-error]")) {
    out.push(`formula error: ${el.getAttribute("data-mjx-error") || el.textContent.slice(0, 60)}`);
  }
  return out;
}"""


def find_browser(given: str | None) -> str:
    path = given or shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not path:
        raise SystemExit("no chromium found: `apt-get install chromium` (Debian) or pass --browser")
    return path


@contextmanager
def serve(site: Path):
    """The site over HTTP on a free localhost port (the search index is fetched, so file:// will not do)."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # one line per request would drown the result
        pass


def pages(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html") if p.name != "404.html")


def check(
    site: Path, browser: str | None = None, screenshots: bool = True, navigation: bool = True, search: bool = True
) -> list[str]:
    """Every problem found on the site at `site`, as 'page: problem' lines (empty when all is well)."""
    from playwright.sync_api import sync_playwright

    site = Path(site).resolve()
    problems: list[str] = []
    with serve(site) as root, sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=find_browser(browser), args=["--no-sandbox"])
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        seen: list[str] = []
        page.on("console", lambda m: seen.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: seen.append(f"script error: {e}"))
        # a request cut short by leaving the page (net::ERR_ABORTED) is no fault of the site; a missing file is
        page.on("requestfailed", lambda r: None if "ABORTED" in (r.failure or "") else seen.append(f"failed: {r.url}"))
        page.on("response", lambda r: seen.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)

        def route(r):  # anything not from the local server is refused and reported
            if urlparse(r.request.url).netloc == urlparse(root).netloc or r.request.url.startswith("data:"):
                r.continue_()
            else:
                seen.append(f"request outside the site: {r.request.url}")
                r.abort()

        page.route("**/*", route)
        for rel in pages(site):
            seen.clear()
            url = root + (rel[: -len("index.html")] if rel.endswith("index.html") else rel)
            response = page.goto(url, wait_until="networkidle")
            if response is None or not response.ok:
                seen.append(f"HTTP {response.status if response else 'no response'}")
            seen += page.evaluate(PAGE_PROBLEMS)
            if screenshots and rel in SCREENSHOTS:
                out = site / "screenshots" / (rel.replace("/index.html", "").replace("/", "_") or "index")
                out.parent.mkdir(exist_ok=True)
                page.screenshot(path=str(out.with_suffix(".png")), full_page=True)
            problems += [f"{rel}: {p}" for p in dict.fromkeys(seen)]
        if navigation:
            problems += [f"navigation: {p}" for p in navigation_problems(page, root)]
        if search:
            problems += [f"search: {p}" for p in search_problems(page, root)]
        chromium.close()
    return problems


def navigation_problems(page, root: str) -> list[str]:
    """From the home page, following the first link of the navigation leaves the home page for a loaded page."""
    page.goto(root, wait_until="load")
    links = page.locator("nav.md-nav--primary a.md-nav__link[href]")
    targets = [h for h in links.evaluate_all("els => els.map(e => e.href)") if h.rstrip("/") != root.rstrip("/")]
    if not targets:
        return ["no navigation links on the home page"]
    page.goto(targets[0], wait_until="load")
    return [] if page.url != root and page.title() else [f"following {targets[0]} did not load a page"]


def search_problems(page, root: str, term: str = "Wasserstein") -> list[str]:
    """The search box finds `term` (the index is built by the site's own search worker)."""
    page.goto(root, wait_until="load")
    page.locator(".md-search__input").click()
    page.locator(".md-search__input").press_sequentially(term, delay=20)  # the theme listens to key events
    try:
        page.wait_for_selector(".md-search-result__item", timeout=15000)
    except Exception:
        return [f"no result for '{term}'"]
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", default="site", type=Path)
    parser.add_argument("--browser", help="the chromium executable (default: found on PATH)")
    args = parser.parse_args()
    if not (args.site / "index.html").exists():
        raise SystemExit(f"{args.site}/index.html not found: build the site first (make docs)")
    problems = check(args.site, args.browser)
    for line in problems:
        print(line)
    n = len(pages(args.site))
    print(f"{n} pages checked in {find_browser(args.browser)}: " + (f"{len(problems)} problems" if problems else "ok"))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
