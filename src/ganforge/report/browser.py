"""Headless Chromium (Debian's `chromium` package) on a local HTML file: a screenshot, the DOM
after loading, and the console messages the page caused. For the report's tests and the docs
screenshot; ganforge never downloads a browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ganforge.errors import GanforgeError

ENV_VAR = "GANFORGE_CHROMIUM"  # a browser binary to use instead of `chromium` on PATH
NAMES = ("chromium", "chromium-browser")
INSTALL = ("Install Debian's chromium package (`sudo apt-get install chromium`, which "
           "scripts/setup.sh does where apt is usable), or point $GANFORGE_CHROMIUM at a "
           "Chromium binary.")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--no-first-run", "--disable-extensions", "--hide-scrollbars",
    "--enable-logging=stderr", "--v=0",  # console messages go to stderr as CONSOLE lines
)
# Chromium logs a page's console messages as e.g.
#   [123:456:1124/040512.123:INFO:CONSOLE(7)] "Uncaught ReferenceError: ...", source: ... (7)
_CONSOLE = re.compile(r":CONSOLE[:(\]]")
TIMEOUT_S = 120


@dataclass
class Rendered:
    """What one Chromium run gave: stdout (the DOM for dump_dom) and the console lines."""

    stdout: str
    console: list[str]
    command: list[str]


def find_chromium() -> str:
    """The Chromium binary: $GANFORGE_CHROMIUM, else chromium on PATH; a clear error if none."""
    chosen = os.environ.get(ENV_VAR)
    if chosen:
        if shutil.which(chosen) is None:
            raise GanforgeError(f"${ENV_VAR} is '{chosen}', which is not an executable. "
                                + INSTALL)
        return chosen
    for name in NAMES:
        if shutil.which(name):
            return name
    raise GanforgeError("Headless Chromium is needed here but no `chromium` is on PATH. "
                        + INSTALL)


def version() -> str:
    """The browser's version line, e.g. 'Chromium 156.0.8078.79 built on Debian ...'."""
    done = subprocess.run([find_chromium(), "--version"], capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)
    return done.stdout.strip() or done.stderr.strip()


def screenshot(page: Path, png: Path, size: tuple[int, int] = (1200, 3000)) -> Rendered:
    """Render page (a local HTML file) at size (width, height) into png."""
    png = Path(png).resolve()
    done = run([f"--screenshot={png}", f"--window-size={size[0]},{size[1]}"], page)
    if not png.is_file() or png.stat().st_size == 0:
        raise GanforgeError(f"Chromium wrote no screenshot to '{png}'. Its command: "
                            f"{' '.join(done.command)}")
    return done


def dump_dom(page: Path) -> Rendered:
    """Load page and return its serialized DOM (in stdout) and console lines."""
    return run(["--dump-dom"], page)


def run(args: list[str], page: Path) -> Rendered:
    """Chromium headless with FLAGS + args on page, in a throwaway profile folder."""
    url = Path(page).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="ganforge-chromium-") as profile:
        command = [find_chromium(), *FLAGS, f"--user-data-dir={profile}", *args, url]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise GanforgeError(f"Chromium did not finish within {TIMEOUT_S} s: "
                                f"{' '.join(command)}") from None
    if done.returncode != 0:
        raise GanforgeError(f"Chromium failed (exit {done.returncode}): {' '.join(command)}\n"
                            f"{done.stderr[-2000:]}")
    console = [line for line in done.stderr.splitlines() if _CONSOLE.search(line)]
    return Rendered(done.stdout, console, command)
