"""The search on a Ray cluster that shares no filesystem, and a cluster helper that stops only what
it started.

Both nodes run on this machine, but cannot cheat: the cluster and the driver live in a network
namespace of their own (loopback only), and the worker node in a mount namespace of its own in
which the driver's audio and manifest folder, cache dir and trial storage are empty tmpfs mounts.
"""

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import write_toy_corpus
from vgd.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
HELPER = ROOT / "scripts" / "ray_cluster.sh"
pytestmark = pytest.mark.slow

# Run by `unshare -n bash -c`: the helper starts the two nodes (the worker hiding HIDE_FROM_WORKER),
# the search runs against them, and the helper stops them whatever happens.
SCENARIO = r"""
set -eu
ip link set lo up
ip -o addr > "$OUT/addresses.txt"
scripts/ray_cluster.sh local "$PORT" > "$OUT/cluster.txt"
trap 'scripts/ray_cluster.sh stop "$PORT" > "$OUT/stop.txt"' EXIT
ss -ltn > "$OUT/listening.txt"
worker=$(cat "$CLUSTER_DIR/worker/pid")
i=0
for d in $HIDE_FROM_WORKER; do
  i=$((i + 1))
  nsenter -t "$worker" -m ls -A "$d" > "$OUT/worker_sees_$i.txt"
done
"$PYTHON" search/run.py "$@" > "$OUT/search.out" 2> "$OUT/search.err"
"""


# Trials that outlast a worker node's actor start-up (several seconds on a busy two-core machine):
# shorter ones all run on the head, whose reused actor takes the next trial first.
TWO_NODE_SPACE = """
metric: val_balanced_accuracy
mode: max
budget: {num_samples: 4}
base: {optim.epochs: 6, optim.patience: 0, model.n_blocks: 2, model.width: 4,
       window.seconds: 1.0, window.max_windows: 1, data.crops_per_clip: 24}
parameters:
  optim.lr: {loguniform: [1.0e-3, 1.0e-2]}
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_toy_corpus(tmp_path_factory.mktemp("cluster_corpus"), speakers=12, utterances=4)


@pytest.fixture
def cluster_dir():
    """A short folder for the helper's cluster (Ray's socket paths must stay under 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="vgd-ray-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(cluster_dir: Path, **extra) -> dict[str, str]:
    # A HOME of its own: Ray keeps its token in ~/.ray/auth_token, and any other Ray started by
    # this user meanwhile (a search, another clone's tests) may write a new one there.
    home = cluster_dir / "home"
    home.mkdir(exist_ok=True)
    return {
        **os.environ,
        "HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "CLUSTER_DIR": str(cluster_dir),
        "CPUS_PER_NODE": "1",
        "RAY_AUTH_MODE": "token",
        **extra,
    }


def isolation_refused() -> str:
    """Why this machine cannot give the worker its own namespaces ('' when it can)."""
    if os.geteuid() != 0:
        return "needs root for unshare -n -m and tmpfs mounts"
    probe = subprocess.run(
        ["unshare", "-n", "-m", "sh", "-c", "mount -t tmpfs none /mnt && ip link set lo up"],
        capture_output=True,
        text=True,
    )
    return "" if probe.returncode == 0 else f"unshare -n -m not permitted: {probe.stderr.strip()}"


def rows(out_dir: Path) -> list[dict]:
    with open(out_dir / "trials.csv") as f:
        return list(csv.DictReader(f))


def test_search_on_two_nodes_that_share_no_filesystem(tmp_path, corpus, cluster_dir):
    refused = isolation_refused()
    if refused:
        pytest.skip(refused)
    results, cache, out = tmp_path / "results", tmp_path / "cache", tmp_path / "out"
    for d in (results, cache, out):
        d.mkdir()
    hidden = [corpus.parent, cache, results]  # audio + manifest, cache dir, trial storage
    port = free_port()
    env = env_for(
        cluster_dir,
        OUT=str(out),
        PORT=str(port),
        PYTHON=sys.executable,
        HIDE_FROM_WORKER=" ".join(map(str, hidden)),
    )
    space = tmp_path / "two_nodes.yaml"
    space.write_text(TWO_NODE_SPACE)
    search = ["--space", str(space), "--scheduler", "none", "--max-concurrent", "2"]
    search += ["--manifest", str(corpus), "--results-dir", str(results)]
    search += ["--cache-dir", str(cache), "--address", f"127.0.0.1:{port}"]
    proc = subprocess.run(
        ["unshare", "-n", "bash", "-c", SCENARIO, "scenario", *search],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
    )
    logs = {p.name: p.read_text() for p in out.iterdir()}
    assert proc.returncode == 0, (proc.stderr[-2000:], logs.get("search.err", "")[-3000:])

    # Only loopback, and the worker saw the driver's folders empty (tmpfs), the host sees them full.
    assert {line.split()[1] for line in logs["addresses.txt"].splitlines()} == {"lo"}
    mounts = (cluster_dir / "worker" / "mounts.txt").read_text()
    for i, d in enumerate(hidden, 1):
        assert f" {d} " in mounts and "vgd-hidden" in mounts, d
        assert logs[f"worker_sees_{i}.txt"] == "" and any(d.iterdir()), d

    # Trials ran on both nodes; the best model and every trial's logs are on the driver.
    out_dir = results / "two_nodes"
    trials = rows(out_dir)
    assert len(trials) == 4 and {r["status"] for r in trials} == {"completed"}
    nodes = {(cluster_dir / n / "node_id").read_text().strip() for n in ("head", "worker")}
    assert {r["node_id"] for r in trials} == nodes, [r["node_id"] for r in trials]
    assert load_checkpoint(out_dir / "best_model.pt").recipe is not None
    assert len(list((out_dir / "ray").rglob("events.out.tfevents.*"))) == 4
    assert len(list((out_dir / "ray").rglob("checkpoint_*/state.pt"))) == 4

    # The helper stopped its own processes, all of them.
    assert logs["stop.txt"].endswith("ray_cluster: stopped\n"), logs
    pids = stopped_pids(logs["stop.txt"])
    assert pids and not any(_alive(p) for p in pids)


def stopped_pids(text: str) -> set[int]:
    """The PIDs the helper's ``stop`` says it stopped."""
    line = next(x for x in text.splitlines() if "stopping the cluster of" in x)
    return {int(p) for p in line.split("PIDs")[1].split()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _descendants(pid: int) -> set[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        found.add(p)
        todo.extend(children.get(p, []))
    return found


def smoke_search(tmp_path: Path, corpus: Path) -> list[str]:
    """The smoke search, one trial at a time, writing under ``tmp_path``."""
    return [sys.executable, str(ROOT / "search" / "run.py"), "--space", "smoke"] + [
        *("--manifest", str(corpus), "--results-dir", str(tmp_path / "results")),
        *("--cache-dir", str(tmp_path / "cache"), "--max-concurrent", "1"),
    ]


def test_stopping_a_helper_cluster_leaves_a_running_search_alone(tmp_path, corpus, cluster_dir):
    search = subprocess.Popen(
        smoke_search(tmp_path, corpus) + ["--num-cpus", "1"],
        cwd=tmp_path,
        env=env_for(cluster_dir),  # its Ray token beside the helper's, not in the user's HOME
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        ray_dir = tmp_path / "results" / "smoke" / "ray"
        deadline = time.monotonic() + 180
        while not list(ray_dir.rglob("result.json")) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert search.poll() is None, search.communicate()[1][-2000:]
        searchers = _descendants(search.pid)  # the search's driver and the Ray it started
        port, env = str(free_port()), env_for(cluster_dir)
        started = subprocess.run(
            [str(HELPER), "local", port], env=env, capture_output=True, text=True, timeout=180
        )
        assert started.returncode == 0, started.stderr[-2000:]
        stopped = subprocess.run(
            [str(HELPER), "stop", port], env=env, capture_output=True, text=True, timeout=120
        )
        pids = stopped_pids(stopped.stdout)
        assert len(pids) >= 4 and not pids & searchers, stopped.stdout
        assert not any(_alive(p) for p in pids)
        assert search.poll() is None or search.returncode == 0
        _, err = search.communicate(timeout=240)
        assert search.returncode == 0, err[-3000:]
        assert len(rows(tmp_path / "results" / "smoke")) == 4
    finally:
        if search.poll() is None:
            os.killpg(search.pid, signal.SIGKILL)


def test_a_search_without_address_starts_a_ray_of_its_own_beside_a_running_cluster(
    tmp_path, corpus, cluster_dir
):
    """ray.init() with no address joins $RAY_ADDRESS, or else the newest cluster `ray start` made
    on this machine (/tmp/ray/ray_current_cluster; the helper's lives in its own folder, so the
    variable stands in for it here). The search has a HOME of its own, so its token is not the
    cluster's, as when another user's cluster runs on the machine: joining would fail.
    """
    port, env = str(free_port()), env_for(cluster_dir)
    started = subprocess.run(
        [str(HELPER), "local", port], env=env, capture_output=True, text=True, timeout=180
    )
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        home = tmp_path / "home"
        home.mkdir()
        search = subprocess.run(
            smoke_search(tmp_path, corpus),
            cwd=tmp_path,
            env={**os.environ, "HOME": str(home), "RAY_ADDRESS": f"127.0.0.1:{port}"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert search.returncode == 0, search.stderr[-3000:]
        trials = rows(tmp_path / "results" / "smoke")
        helpers = {(cluster_dir / n / "node_id").read_text().strip() for n in ("head", "worker")}
        assert len(trials) == 4 and not {r["node_id"] for r in trials} & helpers
    finally:
        subprocess.run([str(HELPER), "stop", port], env=env, capture_output=True, timeout=120)


def test_stop_leaves_alone_a_process_that_took_a_dead_node_s_pid(cluster_dir):
    """A node that died leaves its PID file behind; the PID may now be another's group leader."""
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)  # a group leader, not Ray
    try:
        for node in ("head", "worker"):
            (cluster_dir / node).mkdir()
            (cluster_dir / node / "pid").write_text(f"{other.pid}\n")
        out = subprocess.run(
            ["bash", str(HELPER), "stop"],
            env=env_for(cluster_dir),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert "nothing of" in out.stdout and _alive(other.pid)
    finally:
        other.kill()
        other.wait()
