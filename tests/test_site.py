"""The browser check of the site (scripts/check_site.py) finds what it promises on a small site made to fail in
each way: a console error, a request that leaves the site, an image that does not decode, a formula MathJax did
not render. Needs Debian's chromium and playwright (`.ci/run` installs both); skipped without them."""

import importlib.metadata
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
check_site = pytest.importorskip("check_site")
pytest.importorskip("playwright")
if not (shutil.which("chromium") or shutil.which("chromium-browser")):
    pytest.skip("no chromium on this machine (apt-get install chromium)", allow_module_level=True)

try:
    MATHJAX = next(f for f in importlib.metadata.files("sphinx-mathjax-offline") if f.name == "tex-svg-full.js")
except importlib.metadata.PackageNotFoundError:
    pytest.skip("MathJax not installed (make setup installs sphinx-mathjax-offline)", allow_module_level=True)
CONFIG = (REPO / "docs" / "javascripts" / "mathjax.js").read_text()
PNG = bytes.fromhex(  # a 1x1 PNG
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def page(body: str, mathjax: bool = True) -> str:
    scripts = f"<script>{CONFIG}</script><script src='/mathjax.js'></script>" if mathjax else ""
    return f"<!doctype html><html><head><title>t</title></head><body>{body}{scripts}</body></html>"


@pytest.fixture(scope="module")
def problems(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    (site / "mathjax.js").write_bytes(Path(MATHJAX.locate()).read_bytes())
    (site / "dot.png").write_bytes(PNG)
    pages = {
        "index.html": page("<p><span class='arithmatex'>\\(n^{-1/(d+5)}\\)</span></p><img src='dot.png'>"),
        "console/index.html": page("<script>console.error('boom')</script>"),
        "outside/index.html": page("<img src='https://fonts.example.org/x.png'>"),
        "broken/index.html": page("<img src='missing.png'>"),
        "plain/index.html": page("<span class='arithmatex'>\\(x^2\\)</span>", mathjax=False),
        "bad_tex/index.html": page("<span class='arithmatex'>\\(\\frac{1}\\)</span>"),
    }
    for rel, html in pages.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(html)
    found = check_site.check(site, screenshots=False, navigation=False, search=False)
    return {rel: [p for p in found if p.startswith(rel + ":")] for rel in pages}


def test_a_clean_page_with_a_formula_and_an_image_passes(problems):
    assert problems["index.html"] == []


def test_a_console_error_fails(problems):
    assert any("console error: boom" in p for p in problems["console/index.html"])


def test_a_request_outside_the_site_is_refused_and_reported(problems):
    assert any("request outside the site: https://fonts.example.org" in p for p in problems["outside/index.html"])


def test_an_image_that_does_not_load_fails(problems):
    found = problems["broken/index.html"]
    assert any("image not decoded: missing.png" in p for p in found) and any("HTTP 404" in p for p in found)


def test_a_formula_left_as_text_fails(problems):
    assert any("formula not rendered: \\(x^2\\)" in p for p in problems["plain/index.html"])


def test_a_formula_mathjax_cannot_read_fails(problems):
    assert any("formula error" in p for p in problems["bad_tex/index.html"])
