"""The README's picture: the ward view of a running ``make run``, taken with the system Chromium.

    python -m devtools.screenshot [--url http://127.0.0.1:8000] [--ward "Labour Ward"]
        [--out docs/img/ward-view.png] [--wait-alarms 120]

Signs in as the demo nurse, opens the ward, waits until the simulator has raised at least one
alarm (at most ``--wait-alarms`` seconds) and saves a 1440 x 900 picture.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

from playwright.sync_api import sync_playwright


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--ward", default="Labour Ward")
    parser.add_argument("--email", default="nurse@demo.local")
    parser.add_argument("--password", default="Demo-Nurse-2026")
    parser.add_argument("--out", default="docs/img/ward-view.png")
    parser.add_argument("--wait-alarms", type=float, default=120.0)
    args = parser.parse_args()
    chromium = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(args.url + "/")
        page.fill("#email", args.email)
        page.fill("#password", args.password)
        page.click("button[type=submit]")
        page.click(f"a.ward-link:text-is('{args.ward}')")
        page.wait_for_selector("#conn[data-state='open']")
        deadline = time.monotonic() + args.wait_alarms
        while time.monotonic() < deadline and not page.locator(".ward-alerts .alert-item").count():
            page.wait_for_timeout(1000)
        page.wait_for_timeout(3000)  # a few seconds of trend on every tile
        page.screenshot(path=args.out)
        alarms = page.locator(".ward-alerts .alert-item").all_inner_texts()
        print(f"saved {args.out}; {page.locator('.tile').count()} beds; alarms: {alarms}")
        browser.close()


if __name__ == "__main__":
    main()
