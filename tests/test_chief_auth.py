"""A chief started with defaults answers only its workers: no token, no service; a trial is reported
only by the worker that holds it, with the values it was handed."""

import json
import stat
import subprocess

import grpc
import pytest

from conftest import cli_command, cli_env, search_args
from test_distributed import SPACE, free_port, wait_all, wait_until_listening


def stub_on(address, metadata=()):
    from keras_tuner.src import protos

    channel = grpc.insecure_channel(address)
    return protos.get_service_grpc().OracleStub(channel), protos.get_service(), list(metadata)


@pytest.mark.slow
def test_only_workers_with_the_token_run_the_search(tmp_path):
    args = search_args(tmp_path, SPACE, "tuner.max_trials=2", tuner="random")
    address = f"127.0.0.1:{free_port()}"
    search_dir = tmp_path / "search" / "random-test"
    log = (tmp_path / "chief.log").open("w")
    chief = subprocess.Popen(cli_command(*args, "search.distributed.role=chief", f"search.distributed.address={address}",
                                         f"hydra.run.dir={tmp_path / 'chief'}"),
                             cwd=tmp_path, env=cli_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_listening(address, chief)
        stub, service, _ = stub_on(address)
        for call, request in ((stub.GetSpace, service.GetSpaceRequest()),
                              (stub.CreateTrial, service.CreateTrialRequest(tuner_id="intruder"))):
            with pytest.raises(grpc.RpcError) as refused:
                call(request, timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        token_file = search_dir / ".chief-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600, "readable by the user only"
        token = token_file.read_text().strip()
        # With the token but not holding the trial: its end is refused.
        headers = [("x-imgexp-token", token), ("x-imgexp-tuner-id", "intruder")]
        import keras_tuner as kt

        fake = kt.engine.trial.Trial(hyperparameters=kt.HyperParameters(), trial_id="0000", status="COMPLETED")
        with pytest.raises(grpc.RpcError) as refused:
            stub.EndTrial(service.EndTrialRequest(trial=fake.to_proto()), metadata=headers, timeout=10)
        assert refused.value.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNKNOWN)
        worker = subprocess.Popen(cli_command(*args, "search.distributed.role=worker", f"search.distributed.address={address}",
                                              "search.distributed.tuner_id=w1", f"hydra.run.dir={tmp_path / 'w1'}"),
                                  cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_all([chief, worker], timeout=600)
        assert chief.returncode == 0 and worker.returncode == 0, (tmp_path / "chief.log").read_text()[-3000:]
    finally:
        for p in (chief,):
            if p.poll() is None:
                p.kill()
    entries = [json.loads(l) for l in (search_dir / "trials.jsonl").read_text().splitlines()]
    assert {e["tuner_id"] for e in entries} == {"w1"} and len(entries) == 2
    assert (search_dir / "best" / "model.keras").is_file()


def test_the_token_checks_in_process():
    from imgexp.tuning.chief_auth import RequireToken

    class Details:
        def __init__(self, metadata):
            self.invocation_metadata = metadata

    check = RequireToken("s" * 43)
    assert check.intercept_service(lambda d: "served", Details((("x-imgexp-token", "s" * 43),))) == "served"
    assert check.intercept_service(lambda d: "served", Details((("x-imgexp-token", "wrong"),))) is check.denied
    assert check.intercept_service(lambda d: "served", Details(())) is check.denied


@pytest.mark.slow
def test_a_chief_with_a_certificate_serves_over_tls(tmp_path):
    cert, key = tmp_path / "chief.pem", tmp_path / "chief.key"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                           "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                           "-out", str(cert)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {made.stderr[-300:]}")
    args = search_args(tmp_path, SPACE, "tuner.max_trials=1", tuner="random")
    address = f"127.0.0.1:{free_port()}"
    chief = subprocess.Popen(cli_command(*args, "search.distributed.role=chief", f"search.distributed.address={address}",
                                         f"search.distributed.tls_cert={cert}", f"search.distributed.tls_key={key}",
                                         f"hydra.run.dir={tmp_path / 'chief'}"),
                             cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until_listening(address, chief)
        plain = subprocess.run(cli_command(*args, "search.distributed.role=worker", f"search.distributed.address={address}",
                                           "search.distributed.connect_timeout=3", f"hydra.run.dir={tmp_path / 'plain'}"),
                               cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120)
        assert plain.returncode == 2 and "no chief answered" in plain.stderr, "no TLS, no conversation"
        worker = subprocess.Popen(cli_command(*args, "search.distributed.role=worker", f"search.distributed.address={address}",
                                              f"search.distributed.tls_ca={cert}", f"hydra.run.dir={tmp_path / 'w1'}"),
                                  cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_all([chief, worker], timeout=600)
        assert chief.returncode == 0 and worker.returncode == 0
    finally:
        if chief.poll() is None:
            chief.kill()
    assert (tmp_path / "search" / "random-test" / "best" / "model.keras").is_file()


@pytest.mark.parametrize("trial_id", ["/../../../../../tmp/ESCAPED", "../x", "1; rm", "", "0" * 13])
def test_a_worker_refuses_trial_ids_a_fake_chief_makes_up(tmp_path, trial_id):
    from types import SimpleNamespace

    from imgexp.errors import UserError
    from imgexp.tuning.tuner import RunTuner

    search = SimpleNamespace(search_dir=tmp_path / "search")
    with pytest.raises(UserError, match="not a KerasTuner trial id"):
        RunTuner.checked_trial_dir(search, trial_id)
    assert not (tmp_path / "ESCAPED").exists() and not list(tmp_path.glob("**/ESCAPED"))
    assert RunTuner.checked_trial_dir(search, "0003") == tmp_path / "search" / "trial_0003"


def test_a_trial_folder_linked_out_of_the_search_is_refused(tmp_path):
    from types import SimpleNamespace

    from imgexp.errors import UserError
    from imgexp.tuning.tuner import RunTuner

    (tmp_path / "search").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "search" / "trial_0001").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UserError, match="outside the search folder"):
        RunTuner.checked_trial_dir(SimpleNamespace(search_dir=tmp_path / "search"), "0001")
