"""Scoring the boston model: numpy's ``X @ w + b`` against the model as it is served.

In one process, on the same 100 000 raw boston rows (the 506 rows of ``data/01_raw/boston.txt``
repeated; RAD, TAX and CHAS as int64, the way ``pd.read_csv`` reads them), interleaved:

- ``numpy``: ``X @ w + b`` on a float64 array (the floor; ``w``, ``b`` fold in the scaler);
- ``predictor``: the project's ``RegressionPredictor.predict`` on the DataFrame (checks, scaler,
  arithmetic), without MLflow;
- ``pyfunc``: ``mlflow.pyfunc.load_model(folder).predict`` on the DataFrame;
- the project server's ``/invocations`` without the HTTP (``Invocations.score``) on the rows
  as a JSON ``dataframe_split`` body: body in, JSON answer out, with its vectorised parse and
  with the general one (a Python object per number, as before).

Then over HTTP on 127.0.0.1, the servers running at once and the requests alternating between
them: ``mlflow models serve``; ``python -m linear_nets.serving.server`` (``guarded``: MLflow's
scoring app behind the project's request guard); and the same with its vectorised JSON parse
turned off (``--fast-json-min-bytes -1``: every JSON body decoded into Python objects, as before
issue #24's JSON row). One-row requests (JSON ``dataframe_split``, one keep-alive connection;
p50 and p99), and 100 000 rows in one request as JSON, CSV and Parquet.

The model is the project's models-from-code regression model saved to a temporary folder
(``linear_nets.serving.pyfunc.save_model``), with least-squares weights. ``--model FOLDER``
measures another saved model folder instead (e.g. one made by an older commit).

Run ``uv run python benchmarks/serving.py`` (about a minute on two cores); ``--quick`` for a
few seconds without the 100 000-row HTTP requests; ``--json PATH`` writes the rows.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
INT_COLUMNS = ["CHAS", "RAD", "TAX"]
SERVERS = ["mlflow models serve", "guarded", "guarded, general JSON parse"]
GENERAL_JSON = SERVERS[2]  # the project's server with its vectorised JSON parse turned off


def boston_rows(n: int) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` raw boston feature rows (the 506 repeated) and their MEDV."""
    from linear_nets.pipelines.boston.nodes import FEATURES, TARGET, parse_statlib_records

    table = parse_statlib_records((ROOT / "data/01_raw/boston.txt").read_bytes())
    table = table.iloc[np.arange(n) % len(table)].reset_index(drop=True)
    rows = table[list(FEATURES)].astype({column: "int64" for column in INT_COLUMNS})
    return rows, table[TARGET].to_numpy()


def save_boston_model(folder: Path, rows: pd.DataFrame, target: np.ndarray) -> Path:
    """The regression model of ``rows`` → ``target`` (least squares on standardised rows),
    saved as the pipelines log it."""
    import torch

    from linear_nets.engine.closed_form import least_squares
    from linear_nets.serving.pyfunc import PyfuncPackage, save_model
    from linear_nets.tracking.registry import Candidate

    X = rows.to_numpy(dtype="float64")
    mean, std = X.mean(axis=0), X.std(axis=0)
    weight, bias = least_squares(torch.tensor((X - mean) / std), torch.tensor(target))
    package = PyfuncPackage(
        model_code="regression_model.py",
        weights={"weight": weight.float().reshape(1, -1), "bias": bias.float().reshape(1)},
        config={"columns": list(rows.columns), "mean": mean.tolist(), "std": std.tolist()},
        input_example=rows.head(5),
        output_type="double",
        candidate=Candidate(metric="test_rmse", value=0.0, higher_is_better=False, gate="bench"),
    )
    return save_model(package, folder)


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def in_process(folder: Path, rows: pd.DataFrame, repeat: int) -> list[dict]:
    import mlflow.pyfunc
    import torch

    from linear_nets.serving.regression import RegressionPredictor

    model = mlflow.pyfunc.load_model(str(folder))
    config = json.loads((folder / "artifacts/config.json").read_text())
    weights = torch.load(folder / "artifacts/weights.pt", weights_only=True)
    predictor = RegressionPredictor(config, weights)
    X = rows.to_numpy(dtype="float64")
    w = weights["weight"].double().numpy().reshape(-1) / np.asarray(config["std"])
    b = float(weights["bias"].double().reshape(-1)[0]) - float(np.asarray(config["mean"]) @ w)
    expected = X @ w + b
    np.testing.assert_allclose(model.predict(rows), expected, rtol=1e-9)
    np.testing.assert_allclose(predictor.predict(rows), expected, rtol=1e-9)
    from linear_nets.serving.server import Invocations

    body, content_type = bodies(rows)["JSON"]
    vectorised = Invocations(model, fallback=None)
    general = Invocations(model, fallback=None, fast_json_min_bytes=None)
    for server in (vectorised, general):
        status, answer = server.score(body, content_type)
        assert status == 200, answer
        np.testing.assert_allclose(json.loads(answer)["predictions"], expected, rtol=1e-9)
    cases = {
        "numpy X @ w + b": lambda: X @ w + b,
        "predictor.predict (checks + scaler)": lambda: predictor.predict(rows),
        "pyfunc.load_model(...).predict": lambda: model.predict(rows),
        "JSON body → answer, vectorised parse": lambda: vectorised.score(body, content_type),
        "JSON body → answer, general parse": lambda: general.score(body, content_type),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):  # interleaved: each round runs every case once
        for name, fn in cases.items():
            times[name].append(best(fn, 3))
    floor = min(times["numpy X @ w + b"])
    return [
        {
            "case": name,
            "rows": len(rows),
            "best_s": min(spent),
            "rows_per_s": len(rows) / min(spent),
            "x_numpy": min(spent) / floor,
        }
        for name, spent in times.items()
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def start_server(kind: str, folder: Path, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    bin_dir = Path(sys.executable).parent
    if kind == "mlflow models serve":
        command = [
            str(bin_dir / "mlflow"), "models", "serve", "-m", str(folder), "--env-manager",
            "local", "--host", LOOPBACK, "--port", str(port), "--workers", "1",
        ]  # fmt: skip
    else:
        command = [
            sys.executable, "-m", "linear_nets.serving.server", "-m", str(folder),
            "--host", LOOPBACK, "--port", str(port), "--max-body-bytes", str(256 * 2**20),
        ]  # fmt: skip
        if kind == GENERAL_JSON:
            command += ["--fast-json-min-bytes", "-1"]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = log.open("w")
    server = subprocess.Popen(
        command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"{kind} exited {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            connection = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                return server, port
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{kind} did not answer /ping within 180 s")


def stop_server(server: subprocess.Popen) -> None:
    import signal

    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def post(connection: http.client.HTTPConnection, body: bytes, content_type: str) -> bytes:
    connection.request(
        "POST", "/invocations", body=body, headers={"Content-Type": content_type}
    )
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200:
        raise SystemExit(f"HTTP {response.status}: {answer[:500]!r}")
    return answer


def bodies(rows: pd.DataFrame) -> dict[str, tuple[bytes, str]]:
    split = json.loads(rows.to_json(orient="split", index=False))
    parquet = io.BytesIO()  # plain pages: the repeated rows would shrink to a dictionary
    rows.to_parquet(parquet, index=False, compression=None, use_dictionary=False)
    return {
        "JSON": (json.dumps({"dataframe_split": split}).encode(), "application/json"),
        "CSV": (rows.to_csv(index=False).encode(), "text/csv"),
        "Parquet": (parquet.getvalue(), "application/vnd.apache.parquet"),
    }


def over_http(
    folder: Path, rows: pd.DataFrame, requests: int, batch_repeat: int, kinds: list[str]
) -> list[dict]:
    """Both servers run at once; the requests alternate between them (10 rounds of one-row
    requests, then each batch format in turn), so a busy spell of the machine hits both."""
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as logs:
        servers = {}
        try:
            for kind in kinds:
                servers[kind] = start_server(kind, folder, Path(logs, f"{len(servers)}.log"))
            ports = {kind: port for kind, (_, port) in servers.items()}
            results += one_row_latencies(ports, bodies(rows.head(1))["JSON"], requests)
            if batch_repeat:
                for name, body in bodies(rows).items():
                    results += batch_rates(ports, name, body, len(rows), batch_repeat)
        finally:
            for server, _ in servers.values():
                stop_server(server)
    return sorted(results, key=lambda row: row["case"])


def one_row_latencies(
    ports: dict[str, int], one_row: tuple[bytes, str], requests: int, rounds: int = 10
) -> list[dict]:
    connections = {kind: http.client.HTTPConnection(LOOPBACK, port) for kind, port in ports.items()}
    for connection in connections.values():
        for _ in range(20):  # warm up
            post(connection, *one_row)
    latencies: dict[str, list[float]] = {kind: [] for kind in ports}
    for _ in range(rounds):
        for kind, connection in connections.items():
            for _ in range(max(1, requests // rounds)):
                start = time.perf_counter()
                post(connection, *one_row)
                latencies[kind].append(time.perf_counter() - start)
    results = []
    for kind, spent in latencies.items():
        spent.sort()
        results.append({
            "case": f"{kind}: one row (JSON)",
            "rows": 1,
            "p50_ms": 1e3 * statistics.median(spent),
            "p99_ms": 1e3 * spent[int(0.99 * (len(spent) - 1))],
            "requests": len(spent),
        })
    return results


def batch_rates(
    ports: dict[str, int], name: str, request: tuple[bytes, str], n: int, repeat: int
) -> list[dict]:
    body, content_type = request
    times: dict[str, list[float]] = {kind: [] for kind in ports}
    refused: dict[str, str] = {}
    for _ in range(repeat + 1):  # the first round checks the answer, untimed
        for kind, port in ports.items():
            if kind in refused:
                continue
            connection = http.client.HTTPConnection(LOOPBACK, port, timeout=120)
            start = time.perf_counter()
            try:
                answer = post(connection, body, content_type)
            except SystemExit as error:  # e.g. a model that cannot take CSV
                refused[kind] = str(error)
                continue
            times[kind].append(time.perf_counter() - start)
            connection.close()
            if len(times[kind]) == 1:
                assert len(json.loads(answer)["predictions"]) == n
    results = []
    for kind in ports:
        case = f"{kind}: {n} rows ({name}, {len(body) / 2**20:.1f} MiB)"
        if kind in refused:
            results.append({"case": case, "rows": n, "refused": refused[kind]})
        else:
            spent = min(times[kind][1:])
            results.append({"case": case, "rows": n, "best_s": spent, "rows_per_s": n / spent})
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds in process")
    parser.add_argument("--requests", type=int, default=500, help="one-row requests per server")
    parser.add_argument("--model", type=Path, help="a saved model folder to measure instead")
    parser.add_argument("--quick", action="store_true", help="no 100 000-row HTTP requests")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument(
        "--server", action="append", choices=SERVERS, help="which servers (default: all)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)

    rows, target = boston_rows(args.rows)
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model or save_boston_model(Path(tmp, "model"), rows, target)
        results += in_process(folder, rows, args.repeat)
        if not args.skip_http:
            kinds = args.server or SERVERS
            results += over_http(folder, rows, args.requests, 0 if args.quick else 3, kinds)
    for row in results:
        figures = []
        if "x_numpy" in row:
            figures.append(f"{row['x_numpy']:8.1f}× numpy")
        if "p50_ms" in row:
            figures.append(f"p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms")
        if "rows_per_s" in row:
            figures.append(f"{row['best_s'] * 1e3:9.1f} ms  {row['rows_per_s']:.3g} rows/s")
        if "refused" in row:
            figures.append(row["refused"][:60])
        print(f"{row['case']:<62} {'  '.join(figures)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
