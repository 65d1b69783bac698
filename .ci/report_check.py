"""Open mdseg's Snakemake report in headless Chromium and check what a reader would see.

    python .ci/report_check.py results/report.html --results results --screenshot report.png

Checks, each failure one line: the page renders with no console error, uncaught exception or
failed load; every table and plot under ``<results>/tables`` (``*.csv``, ``*.png``) is listed in
the report's menus and embedded byte for byte, and every plot decodes as an image in the
browser; the first screen names the benchmark of ``<results>/config.json`` and gives every
claim of ``<results>/tables/claims.csv`` with its verdict. Keeps a screenshot of that first
screen. Chromium (Debian's ``chromium``) is driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``), so the check needs nothing beyond the standard library.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VIEWPORT = (1440, 900)  # the first screen: a laptop browser window
# the page's own console lines that are errors (Runtime) or browser-side errors (Log)
ERROR_CONSOLE_TYPES = {"error", "assert"}


class BrowserError(RuntimeError):
    """Chromium did not start, answer or render in time."""


def _child_fds(read_fd: int, write_fd: int) -> Callable[[], None]:
    """In the child: our pipe ends as fds 3 (commands in) and 4 (replies out), as
    ``--remote-debugging-pipe`` expects; moved above 10 first, so neither overwrites the other."""

    def move() -> None:
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (read_fd, write_fd)]
        for target, fd in zip((3, 4), high, strict=True):
            os.dup2(fd, target)
            os.close(fd)

    return move


@dataclass
class Browser:
    """Headless Chromium with one page, spoken to in DevTools protocol messages (JSON, each
    ended by a NUL byte) on two pipes; ``events`` keeps every event received so far."""

    executable: str
    timeout: float = 60.0
    events: list[dict[str, Any]] = field(default_factory=list)

    def __enter__(self) -> Browser:
        self._profile = tempfile.TemporaryDirectory(
            prefix="report-check-", ignore_cleanup_errors=True
        )
        to_chrome, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome = os.pipe()
        args = [
            self.executable,
            "--headless",
            "--remote-debugging-pipe",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={self._profile.name}",
            f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
        ]
        self._stderr = tempfile.TemporaryFile()  # shown if Chromium fails
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            close_fds=False,  # only inheritable fds pass, and only 3 and 4 are ours
            preexec_fn=_child_fds(to_chrome, from_chrome),
            start_new_session=True,
        )
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer = b""
        self._next_id = 0
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
                "sessionId"
            ]
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable", session=self.session)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(BrowserError, OSError):  # it may exit before it answers
                self.call("Browser.close")
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)  # its own group: the browser's helpers
            self._proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)
        self._stderr.close()
        self._profile.cleanup()

    def _exited(self) -> BrowserError:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
        return BrowserError(
            f"Chromium exited (status {self._proc.returncode}){self._stderr_tail()}"
        )

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return f"; its last messages: {' | '.join(lines[-5:])}" if lines else ""

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise BrowserError(
                    f"Chromium did not answer within {self.timeout:.0f} s{self._stderr_tail()}"
                )
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise self._exited()
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and return its result, keeping the events that arrive meanwhile."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        try:
            os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise self._exited() from None
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") != self._next_id:
                self.events.append(reply)
            elif "error" in reply:
                raise BrowserError(f"{method}: {reply['error'].get('message')}")
            else:
                return reply["result"]

    def wait_for(self, event: str) -> dict[str, Any]:
        """The first event named ``event`` (waiting for it if it has not come yet)."""
        deadline = time.monotonic() + self.timeout
        seen = 0
        while True:
            for message in self.events[seen:]:
                if message.get("method") == event:
                    return message["params"]
            seen = len(self.events)
            self.events.append(self._receive(deadline))

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a page expression (awaited if it is a promise)."""
        result = self.call(
            "Runtime.evaluate",
            session=self.session,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details["text"]
            raise BrowserError(f"evaluating {expression[:60]!r}: {text}")
        return result["result"].get("value")


def page_errors(events: list[dict[str, Any]]) -> list[str]:
    """Console errors, uncaught exceptions and browser-logged errors (failed loads), one line
    each."""
    errors = []
    for message in events:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details["text"]
            errors.append(f"uncaught exception: {text.splitlines()[0]}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ERROR_CONSOLE_TYPES:
            args = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
            errors.append(f"console.{params['type']}: {' '.join(args)[:300]}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            errors.append(f"browser log: {entry['text'][:300]} {entry.get('url', '')}".strip())
    return errors


def _expected_files(results: Path) -> list[Path]:
    tables = results / "tables"
    return sorted([*tables.rglob("*.csv"), *tables.rglob("*.png")])


def _embedded_bytes(data_uri: str) -> bytes:
    return base64.b64decode(data_uri.split(";base64,", 1)[1])


def _check_embedded(report: dict[str, Any], results: Path) -> list[str]:
    """Every table and plot under results/tables embedded in the page, byte for byte (matched
    by file and folder name: the report keys them by their path in the run's folder)."""
    by_path = {Path(key).parts[-2:]: entry for key, entry in report["results"].items()}
    problems = []
    for path in _expected_files(results):
        entry = by_path.get(path.parts[-2:])
        if entry is None:
            problems.append(f"{path.name}: not in the report")
        elif _embedded_bytes(entry["data_uri"]) != path.read_bytes():
            problems.append(f"{path.name}: embedded data differ from the file")
    return problems


def _listing(browser: Browser, *clicks: str) -> str:
    """The page's text after clicking, from the main menu, the menu items named ``clicks``."""
    return browser.evaluate(
        f"""new Promise(done => {{
            const click = (names) => {{
                if (!names.length) return done(document.querySelector("#app").innerText);
                Array.from(document.querySelectorAll("#app li a"))
                    .find(a => a.innerText.trim() === names[0]).click();
                setTimeout(() => click(names.slice(1)), 200);
            }};
            app.setView({{navbarMode: "menu"}});
            setTimeout(() => click({json.dumps(clicks)}), 200);
        }})"""
    )


def _check_menus(browser: Browser, report: dict[str, Any], results: Path) -> list[str]:
    """Each category (and subcategory) opened from the menu as a reader would: every table and
    plot is listed in one."""
    listed = ""
    for category, subcategories in report["categories"].items():
        # a category of one subcategory lists its results at once, else one folder each
        single = len(subcategories) == 1
        for clicks in [(category,)] if single else [(category, sub) for sub in subcategories]:
            listed += _listing(browser, *clicks)
    return [f"{p.name}: in no menu" for p in _expected_files(results) if p.name not in listed]


def _check_plots_decode(browser: Browser) -> list[str]:
    """Every embedded image decodes in the browser to a non-empty picture."""
    sizes = browser.evaluate(
        """Promise.all(Object.values(results)
            .filter(r => r.mime_type.startsWith("image/"))
            .map(r => { const img = new Image(); img.src = r.data_uri;
                        return img.decode().then(() => [r.filename, img.naturalWidth],
                                                 () => [r.filename, 0]); }))"""
    )
    return [f"{name}: does not decode as an image" for name, width in sizes if not width]


def _check_first_screen(browser: Browser, results: Path) -> list[str]:
    """The landing page, within the first viewport: the benchmark and every claim's verdict,
    and no reST error (docutils prints those into the page)."""
    benchmark = json.loads((results / "config.json").read_text())["benchmark"]
    with (results / "tables" / "claims.csv").open(newline="") as fh:
        claims = [(row["claim"], row["verdict"]) for row in csv.DictReader(fh)]
    # the text of every element wholly within the first screen
    visible = browser.evaluate(
        """Array.from(document.querySelectorAll("p, td, th, li, h1, h2, h3, strong, em"))
            .filter(el => { const r = el.getBoundingClientRect();
                            return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; })
            .map(el => el.innerText).join("\\n")"""
    )
    problems = [
        f"first screen: reST error: {text.splitlines()[0]}"
        for text in browser.evaluate(
            'Array.from(document.querySelectorAll(".system-message")).map(el => el.innerText)'
        )
    ]
    if f"{benchmark} benchmark" not in visible:
        problems.append(f"first screen: does not name the {benchmark} benchmark")
    lines = visible.splitlines()
    for claim, verdict in claims:
        if claim not in lines:
            problems.append(f"first screen: claim {claim!r} not shown")
        elif verdict not in lines:
            problems.append(f"first screen: verdict {verdict!r} of {claim!r} not shown")
    return problems


@dataclass
class Outcome:
    """What the check found, and how long the page took to render."""

    problems: list[str]
    render_s: float
    results: int


def check_report(
    html: Path, results: Path, screenshot: Path, chromium: str, timeout: float = 60.0
) -> Outcome:
    """Open ``html``, screenshot its first screen and run every check; see the module doc."""
    with Browser(chromium, timeout=timeout) as browser:
        start = time.monotonic()
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            session=browser.session,
            width=VIEWPORT[0],
            height=VIEWPORT[1],
            deviceScaleFactor=1,
            mobile=False,
        )
        browser.call("Page.navigate", session=browser.session, url=html.resolve().as_uri())
        browser.wait_for("Page.loadEventFired")
        # React renders after the load event: wait until the menu is there, then a frame more
        browser.evaluate(
            """new Promise(done => { const ready = () =>
                document.querySelector("#app ul") ? setTimeout(done, 300)
                                                  : setTimeout(ready, 50); ready(); })"""
        )
        render_s = time.monotonic() - start
        shot = browser.call("Page.captureScreenshot", session=browser.session, format="png")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        report = browser.evaluate("({results: results, categories: categories})")
        problems = [
            *_check_first_screen(browser, results),
            *_check_embedded(report, results),
            *_check_plots_decode(browser),
            *_check_menus(browser, report, results),
        ]
        browser.evaluate("new Promise(done => setTimeout(done, 200))")  # late errors
        problems += page_errors(browser.events)
    return Outcome(problems, render_s, len(report["results"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path, help="the report (snakemake --report ...html)")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--screenshot", type=Path, default=Path("report.png"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        outcome = check_report(args.html, args.results, args.screenshot, args.chromium)
    except BrowserError as err:
        print(f"report check: error: {err}", file=sys.stderr)
        return 1
    print(
        f"report check: {args.html} ({args.html.stat().st_size / 2**20:.1f} MiB, "
        f"{outcome.results} results), rendered in {outcome.render_s:.1f} s, "
        f"checked in {time.monotonic() - start:.1f} s, screenshot {args.screenshot}"
    )
    for problem in outcome.problems:
        print(f"report check: {problem}", file=sys.stderr)
    return 1 if outcome.problems else 0


if __name__ == "__main__":
    sys.exit(main())
