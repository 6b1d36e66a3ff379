"""A look at a figure's TensorBoard HParams dashboard in a real browser: TensorBoard served
on a log folder and the dashboard rendered by headless Chromium into a PNG (not part of
CI: it needs Chromium, e.g. Debian's `chromium` package).

    python -m reproduce.tensorboard_check LOGDIR [--png results/tensorboard_hparams.png]
        [--chromium /usr/bin/chromium] [--port 6123]

LOGDIR is what a figure wrote with `--tensorboard`, e.g. `python -m reproduce.figure3
--quick --tensorboard logs` then `python -m reproduce.tensorboard_check logs/figure3`.
"""

import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from tfovp.cli import ArgumentParser

BROWSER_FLAGS = (  # headless, offline, nothing remembered between runs
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1600,1000",
    "--virtual-time-budget=20000",
)


def _wait_for(port, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.5)
    return False


def screenshot(logdir, png, chromium, port):
    """Serve `logdir` with TensorBoard and render its HParams dashboard into `png`."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", str(port), "--bind_all"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not _wait_for(port):
            raise RuntimeError(f"TensorBoard did not answer on port {port}")
        time.sleep(3)  # let it load the runs
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run(
                [chromium, *BROWSER_FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
                 f"http://127.0.0.1:{port}/#hparams"],
                check=True, capture_output=True, timeout=180,
            )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)


def main(argv=None):
    parser = ArgumentParser(prog="python -m reproduce.tensorboard_check", description=__doc__)
    parser.add_argument("logdir", help="a TensorBoard log folder (a figure's --tensorboard output)")
    parser.add_argument("--png", default="tensorboard_hparams.png", help="where the screenshot goes")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium", help="the browser")
    parser.add_argument("--port", type=int, default=6123, help="TensorBoard's port")
    args = parser.parse_args(argv)
    if not pathlib.Path(args.logdir).is_dir():
        parser.error(f"{args.logdir}: no such folder")
    if not shutil.which(args.chromium):
        parser.error(f"--chromium {args.chromium}: not found (install Chromium, e.g. apt-get install chromium)")
    screenshot(pathlib.Path(args.logdir).resolve(), pathlib.Path(args.png).resolve(), args.chromium, args.port)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
