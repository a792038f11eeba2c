"""KerasTuner's chief/worker mode, driven by `search.distributed`.

The chief holds the oracle and serves it over gRPC with KerasTuner's own
`OracleServicer`; workers are ordinary `RunTuner`s whose oracle KerasTuner
replaces with an `OracleClient` when `KERASTUNER_*` is set. imgexp adds what a
long search needs around that engine: a chief loop that reports each finished
trial and says what it is waiting for, a one-line error when a worker cannot
reach its chief, and (`local_workers`) a supervisor that restarts a dead worker
under the same tuner id, so KerasTuner hands it the trial it was running.
"""

import logging
import os
import socket
import time
from concurrent import futures
from typing import Callable

from imgexp.config import DistributedConfig, Role
from imgexp.errors import UserError
from imgexp.tuning.kt_compat import (add_oracle_servicer, chief_may_stop, on_consecutive_failures_check,
                                     send_worker_calls_through, set_worker_timeout)
from imgexp.tuning.oracles import stop_if_over_budget, stop_new_trials

log = logging.getLogger("imgexp.search")

POLL_SECONDS = 0.5


def parse_address(address: str | None, key: str = "search.distributed.address") -> tuple[str, int]:
    if (address or "").startswith("unix:"):  # local workers: a socket in a folder only this user can enter
        return address, 0
    host, _, port = (address or "").rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise UserError(f"{key}={address}: give HOST:PORT, e.g. {key}=chief-host:8000")
    return host, int(port)


def role_of(dist: DistributedConfig) -> Role | None:
    """This process's role (chief for local_workers); check the settings go together."""
    if dist.local_workers < 0 or dist.max_restarts < 0:
        raise UserError("search.distributed.local_workers and search.distributed.max_restarts must be >= 0")
    if dist.local_workers > 0:
        if dist.role is not None:
            raise UserError(f"search.distributed.local_workers={dist.local_workers} starts its own chief and workers; "
                            f"leave search.distributed.role unset (it is {dist.role.value})")
        return Role.chief
    if dist.role is not None:
        parse_address(dist.address)
    if bool(dist.tls_cert) != bool(dist.tls_key):
        raise UserError("search.distributed.tls_cert and search.distributed.tls_key go together: give both (the "
                        "chief's certificate and its key), or neither")
    for key in ("tls_cert", "tls_key", "tls_ca"):
        if getattr(dist, key) and not os.path.isfile(getattr(dist, key)):
            raise UserError(f"search.distributed.{key}={getattr(dist, key)}: no such file")
    return dist.role


def worker_channel(dist: DistributedConfig, address: str | None = None):
    """A channel to the chief: TLS when search.distributed.tls_ca is given."""
    import grpc

    target = address or dist.address
    if dist.tls_ca:
        with open(dist.tls_ca, "rb") as f:
            return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=f.read()))
    return grpc.insecure_channel(target)


def default_tuner_id() -> str:
    """One worker per machine by default; a worker restarted there takes over its unfinished trial."""
    return f"worker-{socket.gethostname()}"


def connect_as_worker(dist: DistributedConfig) -> None:
    """Point KerasTuner at the chief (its environment variables) and wait until it answers."""
    import grpc

    host, port = parse_address(dist.address)
    tuner_id = dist.tuner_id or os.environ.get("KERASTUNER_TUNER_ID") or default_tuner_id()
    if "chief" in tuner_id:  # KerasTuner would take this process for the chief
        raise UserError(f"search.distributed.tuner_id={tuner_id}: a worker's name must not contain 'chief'")
    # KerasTuner only reads these to know this is a worker (its own channel is replaced: authenticate_worker).
    os.environ.update(KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP=host, KERASTUNER_ORACLE_PORT=str(port))
    # KerasTuner waits up to an hour on every call; a chief that is gone should not keep a worker that long.
    set_worker_timeout(dist.connect_timeout)
    log.info("worker %s: connecting to the chief at %s", tuner_id, dist.address)
    with worker_channel(dist) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=dist.connect_timeout)
        except grpc.FutureTimeoutError:
            raise UserError(
                f"search.distributed.address={dist.address}: no chief answered within {dist.connect_timeout:g} s; "
                "start the chief first (search.distributed.role=chief) or fix the address") from None


def start_oracle_server(oracle, address: str, token: str | None, dist: DistributedConfig | None = None):
    """KerasTuner's OracleServicer on `address` (port 0: any free port; `unix:PATH` a socket), answering only
    calls with `token` (None: anyone, search.distributed.insecure), over TLS when `dist` gives a certificate;
    returns (server, servicer, port)."""
    import grpc

    from imgexp.tuning import chief_auth

    interceptors = [chief_auth.RequireToken(token)] if token else []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1), interceptors=interceptors)
    servicer = add_oracle_servicer(oracle, server, chief_auth.check_holder if token else None)
    try:
        if dist is not None and dist.tls_cert and not address.startswith("unix:"):
            with open(dist.tls_key, "rb") as key, open(dist.tls_cert, "rb") as cert:
                port = server.add_secure_port(address, grpc.ssl_server_credentials([(key.read(), cert.read())]))
        else:
            port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        raise UserError(f"search.distributed.address={address}: cannot listen there (port in use, or not this "
                        "machine's address); choose another port or the chief machine's own address")
    server.start()
    return server, servicer, port


def stop_on_failures_instead_of_raising(oracle) -> list[str]:
    """KerasTuner raises inside the gRPC call when too many trials fail in a row, which leaves the
    chief waiting on that trial forever; here the oracle stops handing out trials instead.

    Returns a list that holds KerasTuner's message once that happened.
    """
    stopped: list[str] = []

    def check_and_stop(check) -> None:
        try:
            check()
        except RuntimeError as err:
            stopped.append(str(err))
            stop_new_trials(oracle)

    on_consecutive_failures_check(oracle, check_and_stop)
    return stopped


class ChiefStatus:
    """What the chief says while it serves: each finished trial, and now and then what it waits for."""

    def __init__(self, oracle, describe: Callable, address: str, status_every: float, supervised: bool):
        self.oracle, self.describe, self.address, self.status_every = oracle, describe, address, status_every
        self.supervised = supervised  # local workers are restarted by imgexp, remote ones by their user
        self.started = time.monotonic()
        self.reported = self.at_start = len(oracle.end_order)
        self.last_status = self.started
        self.running_since: dict[str, float] = {}

    def update(self) -> None:
        now = time.monotonic()
        ongoing = {trial.trial_id: tuner_id for tuner_id, trial in list(self.oracle.ongoing_trials.items())}
        for trial_id in ongoing:
            self.running_since.setdefault(trial_id, now)
        for trial_id in self.oracle.end_order[self.reported:]:
            self.running_since.pop(trial_id, None)
            log.info(self.describe(self.oracle.trials[trial_id], now - self.started,
                                   len(self.oracle.end_order) - self.at_start))
        self.reported = len(self.oracle.end_order)
        if now - self.last_status >= self.status_every:
            self.last_status = now
            log.info(self.waiting_line(ongoing, now))

    def waiting_line(self, ongoing: dict[str, str], now: float) -> str:
        done = len(self.oracle.end_order)
        of = f" of {self.oracle.max_trials}" if self.oracle.max_trials else ""
        if not ongoing:
            return f"{done}{of} trials done; waiting for workers to ask the chief at {self.address} for trials"
        running = ", ".join(f"trial {trial_id} on {tuner_id} for {(now - self.running_since[trial_id]) / 60:.1f} min"
                            for trial_id, tuner_id in sorted(ongoing.items()))
        hint = "" if self.supervised else (" (a worker that died: start it again with the same "
                                           "search.distributed.tuner_id and it takes its trial over)")
        return f"{done}{of} trials done; waiting for {running}{hint}"


def authenticate_worker(tuner, dist: DistributedConfig, search_dir) -> None:
    """This worker's calls to the chief carry the chief's token (unless search.distributed.insecure)."""
    import grpc

    from imgexp.tuning import chief_auth

    channel = worker_channel(dist)  # always ours: TLS and unix: addresses KerasTuner's own channel cannot do
    if not dist.insecure:
        token = chief_auth.worker_token(search_dir)
        channel = grpc.intercept_channel(channel, chief_auth.SendToken(token, os.environ["KERASTUNER_TUNER_ID"]))
    send_worker_calls_through(tuner.oracle, channel)


def chief_token(dist: DistributedConfig, search_dir) -> str | None:
    from imgexp.tuning import chief_auth

    if dist.insecure:
        log.warning("search.distributed.insecure=true: the chief answers anyone who reaches its port (they can "
                    "read the space, take trials and report scores); keep it inside a trusted network")
        return None
    token = chief_auth.chief_token(search_dir)
    os.environ[chief_auth.TOKEN_ENV] = token  # local workers started from here inherit it
    return token


def serve(tuner, address: str, status_every: float, budget_seconds: float | None = None,
          workers=None, token: str | None = None, dist: DistributedConfig | None = None) -> bool:
    """Serve the tuner's oracle until every trial has ended; True if too many failed in a row.

    `workers` (local mode) is started once the server listens and checked every poll.
    """
    oracle = tuner.oracle
    oracle.verbose = 0  # the chief reports trials itself, one line each
    stopped = stop_on_failures_instead_of_raising(oracle)
    server, servicer, port = start_oracle_server(oracle, address, token, dist)
    bound = address if address.startswith("unix:") else f"{address.rpartition(':')[0]}:{port}"
    tls = " over TLS" if dist is not None and dist.tls_cert else ""
    log.info("chief: serving the search on %s%s", bound, tls)
    status = ChiefStatus(oracle, tuner.describe_ended, bound, status_every, supervised=workers is not None)
    finished = False
    try:
        if workers is not None:
            workers.start(bound)
        while not chief_may_stop(servicer, oracle):
            time.sleep(POLL_SECONDS)
            status.update()
            stop_if_over_budget(oracle, status.started, budget_seconds)
            if workers is not None:
                workers.check(oracle)
        status.update()
        # KerasTuner saves the oracle before it lets go of a trial that ended; saved again here,
        # a finished search does not hand its last trial out again when resumed.
        tuner.save()
        finished = True
    finally:
        server.stop(grace=2)
        if workers is not None:
            workers.stop(grace=15 if finished else 0)  # finished: workers are on their way out
    return bool(stopped)
