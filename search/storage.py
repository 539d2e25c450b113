"""Where Tune keeps the trial folders (checkpoints, results, TensorBoard logs), on any cluster.

``--storage-path`` is either
- a URI that pyarrow resolves (``s3://``, ``gs://``, ``hdfs://``, ``file://`` for a filesystem
  every node mounts at the same place): every node writes its trials there itself, as Ray does,
  and after the search the driver copies the experiment folder into results/<name>/ray and reads
  it there; or
- a path (by default results/<name>/ray): a folder on the driver's machine. On a cluster
  (``--address``) trials on other nodes write into it through a small actor on the driver's node
  (:class:`DriverFiles`), so it needs no shared filesystem; trials on the driver's node and the
  driver itself write directly.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

log = logging.getLogger(__name__)
LOCAL = pafs.LocalFileSystem()


def is_uri(path: str) -> bool:
    """Whether ``--storage-path`` names a URI (``scheme://...``) rather than a local path."""
    return "://" in path


def resolve_uri(uri: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and path of a storage URI; ValueError naming it if unusable."""
    try:
        return pafs.FileSystem.from_uri(uri)
    except (pa.ArrowException, ValueError, OSError) as e:
        raise ValueError(f"--storage-path {uri}: pyarrow cannot open it ({e})") from e


@dataclass(frozen=True)
class TrialStorage:
    """What Tune is given (``storage_path``, ``storage_filesystem``) and where the driver reads
    the experiment (``local``)."""

    uri: str  # '' for a path on the driver
    local: Path  # the driver's copy of (or the path to) the storage folder

    def exists(self, name: str) -> bool:
        """Whether experiment ``name`` is already in the storage."""
        fs, path = self._target(name)
        return fs.get_file_info(path).type != pafs.FileType.NotFound

    def remove(self, name: str) -> None:
        """Delete experiment ``name`` from the storage (and the driver's copy)."""
        fs, path = self._target(name)
        if fs.get_file_info(path).type != pafs.FileType.NotFound:
            fs.delete_dir(path)
        if self.uri and (self.local / name).exists():
            LOCAL.delete_dir(str(self.local / name))

    def restore_path(self, name: str) -> str:
        """What ``Tuner.restore`` takes for experiment ``name``."""
        return f"{self.uri.rstrip('/')}/{name}" if self.uri else str(self.local / name)

    def tune_kwargs(self, cluster: bool) -> dict:
        """``storage_path`` (and, for a path on a cluster, the driver's filesystem) for Tune."""
        if self.uri:
            return {"storage_path": self.uri}
        if not cluster:
            return {"storage_path": str(self.local)}
        return {"storage_path": str(self.local), "storage_filesystem": driver_filesystem()}

    def fetch(self, name: str) -> None:
        """Copy experiment ``name`` from a URI into ``local`` (nothing to do for a path)."""
        if not self.uri:
            return
        fs, path = self._target(name)
        dest = self.local / name
        dest.mkdir(parents=True, exist_ok=True)
        pafs.copy_files(path, str(dest), source_filesystem=fs, destination_filesystem=LOCAL)

    def _target(self, name: str) -> tuple[pafs.FileSystem, str]:
        if not self.uri:
            return LOCAL, str(self.local / name)
        fs, path = resolve_uri(self.uri)
        return fs, f"{path.rstrip('/')}/{name}"


def trial_storage(storage_path: str, default: Path) -> TrialStorage:
    """The search's storage: ``storage_path`` (a URI or a path), else the ``default`` folder."""
    if is_uri(storage_path):
        resolve_uri(storage_path)  # a bad URI fails now, not after the data is prepared
        return TrialStorage(storage_path, default)
    return TrialStorage("", Path(storage_path).resolve() if storage_path else default)


@ray.remote(num_cpus=0, max_concurrency=8)
class _DriverFilesActor:
    """Runs on the driver's node: the filesystem operations trials elsewhere ask for."""

    def call(self, method: str, *args, **kwargs):
        out = getattr(LOCAL, method)(*args, **kwargs)
        return _infos(out) if method == "get_file_info" else out

    def call_selector(self, base_dir: str, allow_not_found: bool, recursive: bool) -> list[tuple]:
        selector = pafs.FileSelector(base_dir, allow_not_found=allow_not_found, recursive=recursive)
        return _infos(LOCAL.get_file_info(selector))

    def read(self, path: str) -> bytes:
        with LOCAL.open_input_stream(path) as f:
            return f.read()

    def write(self, path: str, data: bytes, append: bool = False) -> None:
        opener = LOCAL.open_append_stream if append else LOCAL.open_output_stream
        with opener(path) as f:
            f.write(data)


def _infos(infos) -> list[tuple]:
    # pyarrow's FileInfo does not pickle: send its fields
    return [(i.path, int(i.type), i.size, i.mtime_ns) for i in infos]


def _from_infos(rows: list[tuple]) -> list[pafs.FileInfo]:
    return [pafs.FileInfo(p, pafs.FileType(t), size=s, mtime_ns=m) for p, t, s, m in rows]


class _Upload(io.BytesIO):
    """A file being written on another node: sent to the driver's node when closed."""

    def __init__(self, send):
        super().__init__()
        self._send = send

    def close(self) -> None:
        if not self.closed:
            self._send(self.getvalue())
        super().close()


class DriverFiles(pafs.FileSystemHandler):
    """The driver's local filesystem, reachable from every node of the cluster.

    On the driver's node it is the local filesystem; elsewhere each operation goes to an actor
    on the driver's node (whole files at a time: trial checkpoints are small).
    """

    def __init__(self, actor, node_id: str):
        self.actor, self.node_id = actor, node_id

    def _here(self) -> bool:
        return ray.is_initialized() and ray.get_runtime_context().get_node_id() == self.node_id

    def _call(self, method: str, *args, **kwargs):
        if self._here():
            return getattr(LOCAL, method)(*args, **kwargs)
        return ray.get(self.actor.call.remote(method, *args, **kwargs))

    def __eq__(self, other) -> bool:
        return isinstance(other, DriverFiles) and other.node_id == self.node_id

    def __ne__(self, other) -> bool:
        return not self == other

    def get_type_name(self) -> str:
        return "vgd-driver"

    def normalize_path(self, path: str) -> str:
        return LOCAL.normalize_path(path)

    def get_file_info(self, paths):
        if self._here():
            return LOCAL.get_file_info(paths)
        return _from_infos(ray.get(self.actor.call.remote("get_file_info", list(paths))))

    def get_file_info_selector(self, selector):
        if self._here():
            return LOCAL.get_file_info(selector)
        args = (selector.base_dir, selector.allow_not_found, selector.recursive)
        return _from_infos(ray.get(self.actor.call_selector.remote(*args)))

    def create_dir(self, path: str, recursive: bool) -> None:
        self._call("create_dir", path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self._call("delete_dir", path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self._call("delete_dir_contents", path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("refusing to empty the driver's root directory")

    def delete_file(self, path: str) -> None:
        self._call("delete_file", path)

    def move(self, src: str, dest: str) -> None:
        self._call("move", src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        self._call("copy_file", src, dest)

    def open_input_stream(self, path: str):
        if self._here():
            return LOCAL.open_input_stream(path)
        return pa.BufferReader(ray.get(self.actor.read.remote(path)))

    def open_input_file(self, path: str):
        if self._here():
            return LOCAL.open_input_file(path)
        return pa.BufferReader(ray.get(self.actor.read.remote(path)))

    def open_output_stream(self, path: str, metadata=None):
        if self._here():
            return LOCAL.open_output_stream(path)
        return pa.PythonFile(_Upload(lambda b: ray.get(self.actor.write.remote(path, b))), "w")

    def open_append_stream(self, path: str, metadata=None):
        if self._here():
            return LOCAL.open_append_stream(path)
        send = lambda b: ray.get(self.actor.write.remote(path, b, True))  # noqa: E731
        return pa.PythonFile(_Upload(send), "w")


def driver_filesystem() -> pafs.PyFileSystem:
    """The driver's filesystem for Tune's ``storage_filesystem``: its actor pinned here."""
    node_id = ray.get_runtime_context().get_node_id()
    actor = _DriverFilesActor.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)
    ).remote()
    return pafs.PyFileSystem(DriverFiles(actor, node_id))
