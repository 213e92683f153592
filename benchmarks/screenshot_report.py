"""Render a store's latest run as the HTML report and screenshot it for the README.

    .venv/bin/python benchmarks/screenshot_report.py parity-demo/parity.db docs/report.png

Needs the `playwright` Python package and a Chromium (Debian: `apt-get install chromium`;
no browser download: the system browser is launched through `executable_path`). Writes the
HTML next to the PNG (same name, `.html`), and shoots it at laptop width, the top
`--height` pixels (full page with `--full`).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from parity.core.store import Store
from parity.report.data import report_data
from parity.report.html import write_html

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def screenshot(
    html: Path, png: Path, width: int = 1280, height: int = 2000, full: bool = False
) -> None:
    """Open `html` in headless Chromium at `width` x 900 and save a PNG of the whole page,
    or of its top, cut below the last section that ends within `height` pixels."""
    from playwright.sync_api import sync_playwright

    png.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": 900}, device_scale_factor=1)
        page.goto(html.resolve().as_uri())
        if full:
            page.screenshot(path=str(png), full_page=True)
        else:
            # cut below the last section that ends within `height`, not through a chart
            bottoms = page.evaluate(
                "[...document.querySelectorAll('main > *')]"
                ".map(e => e.getBoundingClientRect().bottom + window.scrollY)"
            )
            fitting = [b for b in bottoms if b <= height]
            cut = int(max(fitting) + 16) if fitting else height
            clip = {"x": 0, "y": 0, "width": width, "height": cut}
            page.screenshot(path=str(png), full_page=True, clip=clip)
        browser.close()


def main() -> None:
    """Command line: store, PNG path, options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--run", help="run id (default: the latest)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2000)
    parser.add_argument("--full", action="store_true", help="the whole page")
    parser.add_argument("--keep-html", action="store_true", help="keep the HTML beside the PNG")
    args = parser.parse_args()
    with Store(args.store) as store:
        run_id = args.run or (latest.id if (latest := store.latest_run()) else None)
        if run_id is None:
            raise SystemExit(f"{args.store}: no runs")
        data = report_data(store, run_id)
    with tempfile.TemporaryDirectory() as tmp:
        html = args.png.with_suffix(".html") if args.keep_html else Path(tmp) / "report.html"
        write_html(html, data)
        screenshot(html, args.png, args.width, args.height, args.full)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
