"""TensorBoard's HParams dashboard as a user sees it, in headless Chromium at 1600x1000.

    apt-get install chromium            # Debian's package: /usr/bin/chromium
    python experiments/tensorboard_hparams/screenshot.py [--logdir DIR] [--out experiments/tensorboard_hparams]

Without --logdir it first makes what a new user would have after an afternoon: a 4-job sweep
(`python -m imgexp -m optimizer.lr=... model.dense_units=...`) and a small random search, tiny models
on the digits, under one `outputs/`. Then, for the search folder alone and for all of `outputs/`, it starts
`tensorboard --logdir ...` on 127.0.0.1 and takes a screenshot of the HParams tab (table view).
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TINY = ["dataset.image_size=[16,16]", "model.filters=[8,16]", "trainer.epochs=3", "trainer.verbose=0"]


def imgexp(*args: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "imgexp", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def make_outputs(workdir: Path) -> Path:
    imgexp("-m", *TINY, "optimizer.lr=0.01,0.001", "model.dense_units=16,64", cwd=workdir)
    # search_space=cnn searches three-block filter lists: the digits at their 32x32 default
    imgexp("trainer.epochs=2", "trainer.verbose=0", "tuner=random", "search_space=cnn", "tuner.max_trials=4", cwd=workdir)
    return workdir / "outputs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def screenshot(logdir: Path, out: Path, chromium: str) -> None:
    port = free_port()
    tensorboard = Path(sys.executable).with_name("tensorboard")
    server = subprocess.Popen([str(tensorboard), "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugins_listing", timeout=5)
                break
            except OSError:
                time.sleep(1)
        time.sleep(5)  # TensorBoard reads the event files in the background
        subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1600,1000", "--virtual-time-budget=20000", f"--screenshot={out}",
                        f"http://127.0.0.1:{port}/#hparams"], check=True, capture_output=True, timeout=120)
        print(f"wrote {out} ({logdir})")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", type=Path, help="an outputs/ folder with a search in outputs/search/random-cnn")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium on PATH: apt-get install chromium")
    outputs = args.logdir or make_outputs(Path(tempfile.mkdtemp(prefix="imgexp-tb-")))
    screenshot(outputs / "search" / "random-cnn", args.out / "hparams-search.png", chromium)
    screenshot(outputs, args.out / "hparams-outputs.png", chromium)


if __name__ == "__main__":
    main()
