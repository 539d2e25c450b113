"""How trials get their audio: packed once by the driver, through Ray's object store.

The driver decodes the usable clips once (vgd.packed_audio), checks that they fit every node's
object store, and puts them there; each trial fetches the reference (one copy per node, shared by
that node's trials through shared memory) and reads its training, validation and cross-validation
fold clips from it. Before the first trial the driver copies it to every node (``prefetch``), so
no trial waits for the transfer. No node but the driver's needs the audio, the manifest or the
cache dir.

A corpus too large for the smallest node's object store is refused at the start with both sizes;
``--trial-data paths`` is the explicit alternative (every node reads the files at the manifest's
paths and its own ``--cache-dir``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from vgd.config import ConfigError
from vgd.inference import Reader
from vgd.manifest import Clip
from vgd.packed_audio import PackedAudio, TooLarge, gib, pack_audio

log = logging.getLogger(__name__)

PREFETCH_TIMEOUT_S = 600.0
# The packed audio may take this share of the smallest node's object store: the rest is for
# Ray's own objects (trial results, checkpoints in flight, other references).
OBJECT_STORE_SHARE = 0.5


@dataclass(frozen=True)
class Shipped:
    """A reference to the packed audio in Ray's object store, as trials receive it."""

    ref: ray.ObjectRef
    nbytes: int
    clips: int

    def fetch(self) -> PackedAudio:
        """The packed audio (from this node's copy of the object; pulled once per node)."""
        return ray.get(self.ref)


def object_store_budget() -> tuple[int, int]:
    """Bytes the packed audio may take, and the smallest live node's object store."""
    stores = [
        int(n["Resources"].get("object_store_memory", 0)) for n in ray.nodes() if n.get("Alive")
    ]
    smallest = min(stores, default=0)
    return int(smallest * OBJECT_STORE_SHARE), smallest


def ship(clips: Sequence[Clip], reader: Reader) -> tuple[Shipped, list[str]]:
    """Decode ``clips`` once, check the size, put them in the object store; failures listed."""
    budget, smallest = object_store_budget()
    start = time.perf_counter()
    try:
        audio, failed = pack_audio(clips, reader, budget)
    except TooLarge as e:
        raise ConfigError(
            f"the decoded training audio is {gib(e.nbytes)}, more than a trial's node can hold: "
            f"{gib(e.budget)} ({OBJECT_STORE_SHARE:.0%} of the smallest node's Ray object store "
            f"of {gib(smallest)}). Give every node a larger store (`ray start "
            "--object-store-memory`), or pass --trial-data paths with the audio and --cache-dir "
            "at the same paths on every node (docs/clusters.md)"
        ) from e
    shipped = Shipped(ray.put(audio), audio.nbytes, len(audio.clips))
    log.info(
        "packed %d clips (%s) into Ray's object store in %.1f s (budget %s)",
        shipped.clips,
        gib(shipped.nbytes),
        time.perf_counter() - start,
        gib(budget),
    )
    prefetch(shipped)
    return shipped, failed


@ray.remote(num_cpus=0)
def _arrive(audio: PackedAudio) -> int:
    # Ray copies the argument into this node's object store before the call; the copy stays
    # there for the trials (Ray evicts a node's secondary copies only when its store is full).
    return audio.nbytes


def prefetch(shipped: Shipped) -> None:
    """Copy the packed audio to every other live node now, in parallel, and wait for it."""
    here = ray.get_runtime_context().get_node_id()
    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n["NodeID"] != here]
    if not nodes:
        return
    start = time.perf_counter()
    tasks = [
        _arrive.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote(
            shipped.ref
        )
        for n in nodes
    ]
    _, late = ray.wait(tasks, num_returns=len(tasks), timeout=PREFETCH_TIMEOUT_S)
    log.info("copied the audio to %d node(s) in %.1f s", len(nodes), time.perf_counter() - start)
    if late:
        log.warning("%d node(s) had no copy after %.0f s", len(late), PREFETCH_TIMEOUT_S)
