"""Worker processes that run a search's trials on this machine, and their supervision.

Two kinds, both the user's own command again with a few overrides added:
- recycled workers (`search.recycle_every=N`): one at a time, each replaced
  after N trials so memory TensorFlow keeps goes away with its process;
- local KerasTuner workers (`search.distributed.local_workers=N`): N at once,
  talking to the chief over gRPC on 127.0.0.1. KerasTuner's chief keeps a dead
  worker's trial assigned to its tuner id and waits for it forever, so a dead
  worker is started again under the same id: it gets its trial back and runs it
  again (resuming from the trial's last saved epoch).
"""

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from imgexp import safe_write
from imgexp.errors import EXIT_USER_ERROR, UserError

log = logging.getLogger("imgexp.search")

# A worker's exit code for "I ran my share of trials; start a fresh process in my place".
EXIT_RECYCLE = 75
# Overrides imgexp sets on the workers it starts; the user's own values for these are dropped.
WORKER_KEYS = ("hydra.run.dir=", "search.worker=", "search.distributed.")


def worker_command(*extra: str) -> list[str]:
    """This process's command line (`python -m imgexp ...`) with the worker's own overrides."""
    args = [a for a in sys.argv[1:] if not a.startswith(WORKER_KEYS)]
    return [sys.executable, "-m", "imgexp", *args, "search.worker=true", *extra]


def die_with_parent() -> None:
    """Linux: end this worker when the process that started it dies (even by SIGKILL),
    so no worker is left behind asking a chief that is gone."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl
        sys.exit("imgexp: error: the process that started this worker has ended")


def supervise_recycled(run_dir: Path) -> None:
    """Run the search in worker processes one after another, each replaced after `search.recycle_every` trials."""
    for number in range(1, sys.maxsize):
        log.info("starting search worker %d", number)
        code = subprocess.run(worker_command(f"hydra.run.dir={run_dir / 'workers' / str(number)}")).returncode
        if code == 0:
            return
        if code != EXIT_RECYCLE:
            sys.exit(code)  # the worker has said what went wrong


def visible_gpus() -> list[str]:
    """The GPUs to share out, one per worker in turn: CUDA_VISIBLE_DEVICES if set, else all TensorFlow sees."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [d for d in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    import tensorflow as tf

    return [str(i) for i in range(len(tf.config.list_physical_devices("GPU")))]


def last_error_line(log_path: Path) -> str:
    lines = [l for l in log_path.read_text(errors="replace").splitlines() if l.strip()] if log_path.exists() else []
    errors = [l.removeprefix("imgexp: error: ") for l in lines if l.startswith("imgexp: error:")]
    return (errors or lines or ["no output"])[-1]


@dataclass
class Worker:
    tuner_id: str
    gpu: str | None = None
    process: subprocess.Popen | None = None
    starts: int = 0
    restarts: int = 0
    log_path: Path | None = None
    finished: bool = False
    pids: list[int] = field(default_factory=list)


class LocalWorkers:
    """N KerasTuner workers on 127.0.0.1 (worker1..N), each restarted under its own id when it dies."""

    def __init__(self, count: int, run_dir: Path, max_restarts: int):
        gpus = visible_gpus()
        self.workers = [Worker(f"worker{i + 1}", gpus[i % len(gpus)] if gpus else None) for i in range(count)]
        self.run_dir, self.max_restarts = run_dir / "workers", max_restarts
        self.address = ""

    def start(self, address: str) -> None:
        self.address = address
        for worker in self.workers:
            self.launch(worker)

    def launch(self, worker: Worker) -> None:
        worker.starts += 1
        run_dir = self.run_dir / f"{worker.tuner_id}-{worker.starts}"
        run_dir.mkdir(parents=True, exist_ok=True)
        worker.log_path = run_dir / "console.log"
        env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": worker.gpu} if worker.gpu is not None else {})}
        command = worker_command("search.distributed.role=worker", f"search.distributed.address={self.address}",
                                 f"search.distributed.tuner_id={worker.tuner_id}", f"hydra.run.dir={run_dir}")
        # A fresh log per start (the folder is new); opened without following a link at its name.
        fd = os.open(worker.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as out:
            worker.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        worker.pids.append(worker.process.pid)
        log.info("started %s (pid %d%s), log: %s", worker.tuner_id, worker.process.pid,
                 f", GPU {worker.gpu}" if worker.gpu is not None else "", worker.log_path)
        self.write_status()

    def write_status(self) -> None:
        """workers.json in the chief's run dir: which process is which worker, and its log."""
        status = {w.tuner_id: {"pid": w.pids[-1] if w.pids else None, "pids": w.pids, "starts": w.starts,
                               "log": str(w.log_path)} for w in self.workers}
        safe_write.write_text(self.run_dir.parent / "workers.json", json.dumps(status, indent=1))

    def check(self, oracle) -> None:
        """Start again any worker that died; stop the search with one line if one cannot go on."""
        for worker in self.workers:
            code = worker.process.poll()
            if worker.finished or code is None:
                continue
            if code == 0:
                worker.finished = True
                continue
            if code == EXIT_RECYCLE:
                self.launch(worker)
                continue
            if code == EXIT_USER_ERROR:
                raise UserError(f"{worker.tuner_id}: {last_error_line(worker.log_path)} (its log: {worker.log_path})")
            trial = oracle.ongoing_trials.get(worker.tuner_id)
            what = (f"{worker.tuner_id} (pid {worker.process.pid}) "
                    + (f"was killed by signal {-code}" if code < 0 else f"exited with code {code}")
                    + (f" during trial {trial.trial_id}" if trial else ""))
            if worker.restarts >= self.max_restarts:
                raise UserError(f"{what}, after {worker.restarts} restarts (search.distributed.max_restarts); "
                                f"its log: {worker.log_path}; the search is saved: run the same command to resume")
            worker.restarts += 1
            log.warning("%s; starting it again (restart %d of %d) to take its trial over",
                        what, worker.restarts, self.max_restarts)
            self.launch(worker)

    def stop(self, grace: float = 15) -> None:
        """Wait a little for workers that are finishing, then end the rest."""
        alive = [w.process for w in self.workers if w.process and w.process.poll() is None]
        for process in alive:
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.terminate()
        for process in alive:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
