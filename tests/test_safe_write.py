"""imgexp.safe_write (whole files, never through a link out of the folder) and imgexp.folder_lock."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from imgexp import safe_write
from imgexp.errors import UserError
from imgexp.folder_lock import FolderLock, holder, is_locked


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old\n")

    def half_then_crash(temp):
        temp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        safe_write.write_with(target, half_then_crash, tmp_path)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_the_temporary_file_keeps_the_suffixes_library_writers_check(tmp_path):
    seen = []
    safe_write.write_with(tmp_path / "best.weights.h5", lambda temp: (seen.append(temp.name), temp.write_bytes(b"x")))
    assert seen[0].startswith(safe_write.TEMP_PREFIX) and seen[0].endswith(".best.weights.h5")


def test_a_dangling_link_at_the_target_is_replaced_not_followed(tmp_path):
    outside = tmp_path / "home" / "authorized_keys"
    outside.parent.mkdir()
    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    (run / "export" / "model.keras").symlink_to(outside)
    safe_write.write_text(run / "export" / "model.keras", "model", run)
    assert not outside.exists(), "the write went through the link"
    assert not (run / "export" / "model.keras").is_symlink()
    assert (run / "export" / "model.keras").read_text() == "model"


def test_a_linked_folder_inside_the_root_is_refused(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "evaluation").symlink_to(outside)
    with pytest.raises(UserError, match="symbolic link"):
        safe_write.write_json(run / "evaluation" / "metrics.json", {"a": 1}, run)
    assert not list(outside.iterdir())


def test_a_path_that_climbs_out_of_the_root_is_refused(tmp_path):
    with pytest.raises(UserError, match="outside the folder"):
        safe_write.write_text(tmp_path / "run" / ".." / "escaped.txt", "x", tmp_path / "run")
    assert not (tmp_path / "escaped.txt").exists()


def test_append_line_never_follows_a_link(tmp_path):
    outside = tmp_path / "bashrc"
    outside.write_text("safe\n")
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "trials.jsonl").symlink_to(outside)
    with pytest.raises(OSError):
        safe_write.append_line(tmp_path / "search" / "trials.jsonl", "{}", tmp_path / "search")
    assert outside.read_text() == "safe\n"


HOLD = textwrap.dedent("""
    import sys, time
    from imgexp.folder_lock import FolderLock
    FolderLock(sys.argv[1], "search").acquire()
    print("held", flush=True)
    time.sleep(600)
""")


def hold_in_another_process(folder):
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_process_is_refused_with_the_holder_named(tmp_path):
    other = hold_in_another_process(tmp_path)
    try:
        assert is_locked(tmp_path)
        with pytest.raises(UserError, match=f"in use by process {other.pid} on "):
            FolderLock(tmp_path, "search").acquire()
        assert holder(tmp_path)["pid"] == other.pid
    finally:
        other.kill()
        other.wait()


def test_a_sigkill_releases_the_lock_at_once(tmp_path):
    other = hold_in_another_process(tmp_path)
    os.kill(other.pid, signal.SIGKILL)
    other.wait()
    started = time.monotonic()
    with FolderLock(tmp_path):
        assert is_locked(tmp_path)
    assert time.monotonic() - started < 1
    assert not is_locked(tmp_path)


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    outer = FolderLock(tmp_path).acquire()
    with FolderLock(tmp_path):  # the run itself, inside the CLI's hold of its folder
        pass
    assert is_locked(tmp_path), "the inner release must not drop the outer hold"
    outer.release()
    assert not is_locked(tmp_path)


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    from imgexp.run_folder import find_runs, read_yaml

    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 7)]
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("\n".join(lines) + "\n")
    assert len((run / ".hydra" / "config.yaml").read_bytes()) < 600
    started = time.monotonic()
    assert read_yaml(run / ".hydra" / "config.yaml") is None
    [record] = find_runs([tmp_path])
    assert record.config == {} and time.monotonic() - started < 1


def test_a_huge_yaml_is_refused(tmp_path):
    from imgexp.run_folder import MAX_YAML_BYTES, read_yaml

    (tmp_path / "config.yaml").write_text("k: " + "x" * MAX_YAML_BYTES + "\n")
    assert read_yaml(tmp_path / "config.yaml") is None
