"""`bin/tracking-server`: PostgreSQL + `mlflow server` with sign-in, and runs tracked through it.

One server for the module (starting one takes tens of seconds), in pytest's private (0700)
folders, as whichever user runs the tests (root included). The tests run in file order: the
last one crashes the server on purpose.
"""

from __future__ import annotations

import base64
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest

from tests.support import LOOPBACK, free_port, make_project_copy, run_bounded

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bin" / "tracking-server"
HAS_POSTGRES = bool(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or bool(
    shutil.which("initdb") and shutil.which("pg_ctl")
)
# PostgreSQL, MLflow's schema (tens of migrations) and the server's start take minutes on a
# loaded 2-core machine.
START_TIMEOUT_S = 600
RUN_TIMEOUT_S = 600
MODEL = "boston_linear_regression"
LOGIN_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not HAS_POSTGRES,
        reason="PostgreSQL binaries (initdb, pg_ctl) are absent: apt-get install -y postgresql",
    ),
]


@dataclass
class Server:
    project: Path  # a project copy: conf/team/credentials.yml is written there
    data: Path
    port: int
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def credentials(self) -> Path:
        return self.project / "conf" / "team" / "credentials.yml"

    def run(self, *args: str, timeout_s: float = 120, stdin: str | None = None) -> tuple[int, str]:
        where = ["--data-dir", str(self.data), "--credentials", str(self.credentials)]
        command = [str(SCRIPT), *args, *where]
        if stdin is None:
            code, stdout, stderr = run_bounded(command, timeout_s=timeout_s, cwd=ROOT, env=self.env)
        else:
            code, stdout, stderr = run_bounded(
                ["bash", "-c", 'printf "%s\\n" "$0" | "$@"', stdin, *command],
                timeout_s=timeout_s,
                cwd=ROOT,
                env=self.env,
            )
        return code, stdout + stderr


def fresh_server(folder: Path, empty_store: Path) -> Server:
    """A project copy and a data folder in ``folder``, and a free port: nothing started."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in LOGIN_VARIABLES},
        "KEDRO_DISABLE_TELEMETRY": "true",
        "TRACKING_SERVER_PORT": str(port),  # read by bin/tracking-server and conf/team
        "TRACKING_SERVER_START_TIMEOUT_S": str(START_TIMEOUT_S - 60),
    }
    project = make_project_copy(folder / "project", empty_store)
    return Server(project=project, data=folder / "data", port=port, env=env)


def start(server: Server) -> str:
    code, output = server.run("start", "--workers", "1", timeout_s=START_TIMEOUT_S)
    assert code == 0, output
    return output


def stop_and_check_nothing_runs(server: Server) -> None:
    pid_file = server.data / "mlflow.pid"
    group = int(pid_file.read_text()) if pid_file.exists() else None
    code, output = server.run("stop")
    assert code == 0, output
    code, output = server.run("status")
    assert code == 1
    assert "mlflow server: stopped" in output
    assert "PostgreSQL: stopped" in output
    assert not pid_file.exists()
    assert group is None or not group_alive(group)
    with pytest.raises(OSError):  # nothing listens on its port any more
        socket.create_connection((LOOPBACK, server.port), timeout=2).close()


def remove_cluster(server: Server) -> None:
    """As root, the PostgreSQL cluster lives in the postgres user's home, linked from the data
    folder: remove it with the test's folders."""
    link = server.data / "postgres"
    if link.is_symlink():
        shutil.rmtree(link.resolve(), ignore_errors=True)


def admin_password(server: Server) -> str:
    text = server.credentials.read_text()
    return text.split("MLFLOW_TRACKING_PASSWORD: ${oc.env:MLFLOW_TRACKING_PASSWORD,'")[1][:32]


def postmaster_pid(server: Server) -> int:
    return int((server.data / "postgres" / "data" / "postmaster.pid").read_text().split()[0])


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a killed process stays a zombie until its parent reaps it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def group_alive(group: int) -> bool:
    """Whether a live process of process group ``group`` remains."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


def status_of(url: str, user: str | None = None, password: str | None = None) -> int:
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/experiments/search?max_results=1")
    if user is not None:
        login = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {login}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("team")
    folder.chmod(0o700)  # a private folder: PostgreSQL's user must not need to traverse it
    server = fresh_server(folder, empty_mlflow_store)
    try:
        output = start(server)
        assert f"http://{LOOPBACK}:{server.port}" in output
        yield server
    finally:
        server.run("stop")
        remove_cluster(server)


@pytest.fixture
def login(monkeypatch: pytest.MonkeyPatch):
    """Sign MLflow clients of this process in as a given user (MLflow reads the variables)."""

    def sign_in(user: str, password: str) -> None:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)

    return sign_in


def test_start_refuses_a_port_in_use(tmp_path: Path, empty_mlflow_store: Path):
    server = fresh_server(tmp_path, empty_mlflow_store)
    with socket.socket() as other:
        other.bind((LOOPBACK, server.port))
        other.listen()
        code, output = server.run("start")
    assert code == 1
    assert f"port {server.port} is already in use by another process" in output
    assert not (server.data / "mlflow.pid").exists()


def test_listening_beyond_loopback_needs_authentication(tmp_path: Path, empty_mlflow_store: Path):
    server = fresh_server(tmp_path, empty_mlflow_store)
    code, output = server.run("start", "--host", "0.0.0.0", "--no-auth")
    assert code == 1
    assert "refusing to listen on 0.0.0.0 without authentication" in output


def test_a_dead_server_fails_a_run_within_a_minute_with_one_message(
    tmp_path: Path, empty_mlflow_store: Path
):
    nobody = fresh_server(tmp_path, empty_mlflow_store)  # nothing listens on its port
    kedro = Path(sys.executable).with_name("kedro")
    began = time.monotonic()
    code, stdout, stderr = run_bounded(
        [str(kedro), "run", "--pipeline=boston", "--env=team"],
        timeout_s=RUN_TIMEOUT_S,
        cwd=nobody.project,
        env=nobody.env,
    )
    took = time.monotonic() - began
    output = stdout + stderr
    assert code != 0
    assert took < 60, f"took {took:.0f} s"
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    assert f"{LOOPBACK}:{nobody.port}" in errors[0]


def test_only_signed_in_users_get_an_answer(server: Server):
    assert status_of(server.url) == 401
    assert status_of(server.url, "admin", "not-the-password") == 401
    assert status_of(server.url, "admin", admin_password(server)) == 200
    # the password is in an owner-only file that git ignores, and in no log
    assert server.credentials.stat().st_mode & 0o777 == 0o600
    ignored = run_bounded(
        ["git", "check-ignore", "-q", "conf/team/credentials.yml"], timeout_s=30, cwd=ROOT
    )
    assert ignored[0] == 0
    for log in server.data.glob("*.log"):
        assert admin_password(server) not in log.read_text(errors="replace"), log


def test_credentials_reach_the_team_environment_and_the_environment_wins(
    server: Server, monkeypatch: pytest.MonkeyPatch
):
    from kedro.config import OmegaConfigLoader

    def team_credentials() -> dict:
        loader = OmegaConfigLoader(
            str(server.project / "conf"), base_env="base", default_run_env="team"
        )
        return dict(loader["credentials"]["team_tracking"])

    for name in LOGIN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert team_credentials() == {
        "MLFLOW_TRACKING_USERNAME": "admin",
        "MLFLOW_TRACKING_PASSWORD": admin_password(server),
    }
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ed")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "eds-password")
    assert team_credentials() == {
        "MLFLOW_TRACKING_USERNAME": "ed",
        "MLFLOW_TRACKING_PASSWORD": "eds-password",
    }


def test_an_editor_runs_a_pipeline_and_a_reader_cannot_move_the_champion(server: Server, login):
    code, output = server.run("user", "add", "ed", "--role", "editor")
    assert code == 0, output
    editor_password = output.split("with password: ")[1].split()[0]
    code, output = server.run(
        "user", "add", "rita", "--role", "reader", "--password-stdin", stdin="rita-password-1"
    )
    assert code == 0, output
    assert "rita-password-1" not in output

    kedro = Path(sys.executable).with_name("kedro")
    code, stdout, stderr = run_bounded(
        [str(kedro), "run", "--pipeline=boston", "--env=team"]
        + ["--params", "boston.train.epochs=400"],  # enough to pass the registration gate
        timeout_s=RUN_TIMEOUT_S,
        cwd=server.project,
        # the editor's login in the environment wins over the admin's in credentials.yml
        env={
            **server.env,
            "MLFLOW_TRACKING_USERNAME": "ed",
            "MLFLOW_TRACKING_PASSWORD": editor_password,
        },
    )
    assert code == 0, (stdout + stderr)[-4000:]
    assert editor_password not in stdout + stderr

    login("rita", "rita-password-1")
    client = mlflow.MlflowClient(tracking_uri=server.url)
    experiment = client.get_experiment_by_name("linear_nets.boston")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert {"train_mse", "test_mse", "test_r2"} <= set(run.data.metrics)
    # artifacts go through the server into its own folder, not the project's
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    assert any((server.data / "artifacts").rglob("*.png"))
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.run_id == run.info.run_id
    with pytest.raises(mlflow.MlflowException) as refused:
        client.set_registered_model_alias(MODEL, "champion", champion.version)
    assert refused.value.error_code == "PERMISSION_DENIED"
    # the editor's promotion took the registry lock and deleted it (its creator may)
    assert [m.name for m in client.search_registered_models()] == [MODEL]
    # nothing went to the project's SQLite store
    local = mlflow.MlflowClient(tracking_uri=f"sqlite:///{server.project / 'mlflow.db'}")
    assert not local.search_runs([e.experiment_id for e in local.search_experiments()])


def test_a_promotion_lock_is_deleted_by_its_creator_and_another_users_by_the_admin(
    server: Server, login
):
    from linear_nets.tracking.liveness import process_tags
    from linear_nets.tracking.store import LOCK_SUFFIX, RegistryLock

    code, output = server.run(
        "user", "add", "eve", "--role", "editor", "--password-stdin", stdin="eve-password-1"
    )
    assert code == 0, output
    login("eve", "eve-password-1")
    client = mlflow.MlflowClient(tracking_uri=server.url)
    for _ in range(2):  # deleting a registered model sweeps its grants; taking it again re-grants
        with RegistryLock(client, "eves_model"):
            pass
    assert not client.search_registered_models(f"name = 'eves_model{LOCK_SUFFIX}'")

    finished = subprocess.Popen(["true"])  # the lock of another user's process that died
    finished.wait()
    login("admin", admin_password(server))
    admin = mlflow.MlflowClient(tracking_uri=server.url)
    admin.create_registered_model(f"abandoned{LOCK_SUFFIX}", tags=process_tags(finished.pid))
    login("eve", "eve-password-1")
    refused = f"the server's admin deletes the registered model abandoned{LOCK_SUFFIX}"
    with pytest.raises(PermissionError, match=refused), RegistryLock(client, "abandoned"):
        pass
    login("admin", admin_password(server))
    with RegistryLock(admin, "abandoned"):  # the admin may break it
        pass
    assert [m.name for m in admin.search_registered_models()] == [MODEL]


def test_a_backup_restores_into_a_fresh_folder(
    server: Server, tmp_path: Path, empty_mlflow_store: Path, login
):
    backup = tmp_path / "team.backup"
    code, output = server.run("backup", str(backup))
    assert code == 0, output
    assert backup.stat().st_mode & 0o777 == 0o600

    restored = fresh_server(tmp_path / "restored", empty_mlflow_store)
    code, output = restored.run("restore", str(backup))
    assert code == 0, output
    start(restored)
    try:
        login("admin", admin_password(restored))  # the backup's admin, restored with it
        assert admin_password(restored) == admin_password(server)
        before = mlflow.MlflowClient(tracking_uri=server.url)
        after = mlflow.MlflowClient(tracking_uri=restored.url)
        (run,) = before.search_runs(
            [before.get_experiment_by_name("linear_nets.boston").experiment_id]
        )
        (copy,) = after.search_runs(
            [after.get_experiment_by_name("linear_nets.boston").experiment_id]
        )
        assert copy.info.run_id == run.info.run_id
        assert copy.info.status == run.info.status
        assert copy.data.metrics == run.data.metrics
        assert copy.data.params == run.data.params
        history = [m.value for m in before.get_metric_history(run.info.run_id, "train_loss")]
        assert [m.value for m in after.get_metric_history(run.info.run_id, "train_loss")] == history
        versions = {v.version: v.run_id for v in before.search_model_versions(f"name = '{MODEL}'")}
        assert {v.version: v.run_id for v in after.search_model_versions(f"name = '{MODEL}'")} == (
            versions
        )
        assert (
            after.get_registered_model(MODEL).aliases == before.get_registered_model(MODEL).aliases
        )
        # the artifacts came back and the restored server serves them
        assert {a.path for a in after.list_artifacts(run.info.run_id)} == {
            a.path for a in before.list_artifacts(run.info.run_id)
        }
        # users came back too
        assert status_of(restored.url, "rita", "rita-password-1") == 200
    finally:
        stop_and_check_nothing_runs(restored)
        remove_cluster(restored)


def test_status_tells_the_truth_after_a_crash_and_start_repairs_it(server: Server):
    """Last: it crashes the module's server."""
    os.kill(postmaster_pid(server), signal.SIGKILL)
    code, output = server.run("status")
    assert code == 1
    assert "mlflow server: running" in output
    assert "PostgreSQL: stopped (it died" in output

    code, output = server.run("start")  # restarts the dead half only
    assert code == 0, output
    assert "PostgreSQL started" in output
    assert "the tracking server already runs" in output
    assert status_of(server.url, "admin", admin_password(server)) == 200

    group = int((server.data / "mlflow.pid").read_text())
    os.killpg(group, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while group_alive(group) and time.monotonic() < deadline:  # SIGKILL takes a moment
        time.sleep(0.2)
    code, output = server.run("status")
    assert code == 1
    assert "mlflow server: stopped (it died" in output
    assert "PostgreSQL: running" in output

    restarted = postmaster_pid(server)
    stop_and_check_nothing_runs(server)
    assert not alive(restarted)
