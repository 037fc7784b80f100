"""Profiles of the OCR stage runners on this machine, cached per machine fingerprint.

Each module (det, cls, rec) is timed end to end per batch, pre-processing, the model and
post-processing together, on the bundled sample images, because that is what a worker does
per batch. Hardware types are the CPU types of ``data/hardware/cpu.yaml`` with quotas taken
from this machine's core count (see :func:`local_hardware`). Every profile stores the mean and
the 99th percentile of its repeats. Profiles are written as YAML under
``$HARPAGON_CACHE/profiles`` (default ``~/.cache/harpagon/profiles``) in a folder named after
a fingerprint of the CPU model, the core count, the package versions and the fixed input
shapes, and are reused while the fingerprint is unchanged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import replace
from importlib import metadata
from pathlib import Path

from harpagon.errors import ConfigError
from harpagon.model.hardware import HardwareCatalog
from harpagon.model.loading import load_hardware, load_profiles, shipped_data_path
from harpagon.model.profiles import PROFILE_STATISTICS, ProfileSet
from harpagon.profiling.profiler import cpu_model, machine_description, measure_batches, write_profile

__all__ = [
    "OCR_PROFILE_NAMES",
    "OCR_BATCH_SIZES",
    "local_hardware",
    "machine_fingerprint",
    "profile_cache_dir",
    "ensure_local_profiles",
]

OCR_PROFILE_NAMES = {"det": "ocr_det", "cls": "ocr_cls", "rec": "ocr_rec"}
"""OCR module -> the profile name its module entry in ``apps/ocr.yaml`` uses."""
OCR_BATCH_SIZES = (1, 2, 4, 8)
_WARMUP = 1
_REPEATS = 10
"""Timed calls per batch size. The p99 of 10 calls lies between the two slowest of them."""
_PACKAGES = ("onnxruntime", "rapidocr-onnxruntime", "numpy", "opencv-python-headless", "harpagon")


def local_hardware() -> HardwareCatalog:
    """Return the CPU hardware catalog with quotas from this machine's logical core count.

    ``cpu-1t`` may use every core and ``cpu-2t`` every pair of cores. Each quota is
    separate, so a plan may still mix both types beyond the core count.
    """
    # NOTE: on 2 cores this allows det, cls and rec at 1 + 1 + 2 threads. A catalog of
    # cores + 1 single-thread workers was measured against it and reached lower or equal SLO
    # attainment under load (docs/demo.md, "The CPU budget on 2 cores"), so these quotas stay.
    catalog = load_hardware(shipped_data_path("hardware", "cpu.yaml"))
    cores = os.cpu_count() or 1
    types = {}
    for hardware in catalog:
        threads = hardware.threads or 1
        types[hardware.name] = replace(hardware, available=cores // threads)
    return HardwareCatalog(types, f"{catalog.path} (quotas for {cores} cores)")


def machine_fingerprint() -> str:
    """Return a short hash of what OCR timings depend on.

    It covers the CPU model, the logical core count, the versions of the packages that run
    the models, the fixed input shapes of the runners, the batch sizes and the repeat counts.
    """
    from harpagon.serving import ocr

    parts = [cpu_model(), str(os.cpu_count())]
    for package in _PACKAGES:
        try:
            parts.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{package}==none")
    parts.append(f"det={ocr.DET_INPUT_SIZE} cls={ocr.CLS_INPUT_SHAPE} rec={ocr.REC_INPUT_WIDTH}")
    parts.append(f"batch_sizes={OCR_BATCH_SIZES} warmup={_WARMUP} repeats={_REPEATS}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def profile_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Return the folder of cached profiles: ``cache_dir``, else ``$HARPAGON_CACHE/profiles``,
    else ``~/.cache/harpagon/profiles``."""
    if cache_dir is not None:
        return Path(cache_dir)
    root = os.environ.get("HARPAGON_CACHE")
    if root:
        return Path(root) / "profiles"
    return Path.home() / ".cache" / "harpagon" / "profiles"


def ensure_local_profiles(
    cache_dir: str | Path | None = None, progress: bool = True, statistic: str = "mean"
) -> tuple[ProfileSet, HardwareCatalog]:
    """Return the OCR profiles of this machine and its CPU hardware catalog.

    Profiles are read from the cache when one exists for this machine's fingerprint.
    Otherwise the three OCR stage runners are timed for every CPU type with a quota of at
    least one worker, at batch sizes 1, 2, 4 and 8, and the mean and p99 of the repeats are
    cached. On 2 cores that took 55 s. ``statistic`` (``mean`` or ``p99``) chooses what the
    returned profiles' ``latency_ms`` contains, as in
    :func:`harpagon.model.loading.load_profiles`.

    Raises
    ------
    ConfigError
        If this machine has too few cores for any CPU type, the cache folder is not
        writable, or ``statistic`` is unknown.
    """
    if statistic not in PROFILE_STATISTICS:
        raise ConfigError(
            f"unknown profile statistic {statistic!r}; use one of {', '.join(PROFILE_STATISTICS)}"
        )
    hardware = local_hardware()
    target = profile_cache_dir(cache_dir) / f"ocr-{machine_fingerprint()}"
    if target.is_dir() and all((target / f"{name}.yaml").is_file() for name in OCR_PROFILE_NAMES.values()):
        return load_profiles(target, statistic), hardware

    usable = [hw for hw in hardware if (hw.available or 0) >= 1]
    if not usable:
        raise ConfigError(f"{hardware.path}: no CPU hardware type fits this machine's cores")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".ocr-", dir=target.parent))
    except OSError as err:
        raise ConfigError(
            f"{target.parent}: cannot write the profile cache ({err}); set HARPAGON_CACHE "
            "to a writable folder"
        ) from err

    try:
        for hw in usable:
            _profile_stage_runners(staging, hw.name, hw.threads or 1, progress)
        # Rename the complete folder into place, so a cache is never half written.
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return load_profiles(target, statistic), hardware


def _profile_stage_runners(folder: Path, hardware: str, threads: int, progress: bool) -> None:
    from harpagon.serving.images import DEMO_IMAGE_NAMES, sample_images
    from harpagon.serving.ocr import ClsRunner, DetRunner, RecRunner, decode_image

    # Real inputs: the demo images for det, and the text crops that det finds in them for
    # cls and rec, cycled to fill each batch.
    images = [decode_image(image.png) for image in sample_images(DEMO_IMAGE_NAMES)]
    det = DetRunner(threads)
    crops = [crop for detection in det.run_batch(images[:1], 1) for crop in detection.crops]
    if not crops:
        raise RuntimeError("the sample page yielded no text crops; the OCR models do not run correctly")
    runners = {"det": (det, images), "cls": (ClsRunner(threads), crops), "rec": (RecRunner(threads), crops)}

    source = (
        f"harpagon.profiling.ocr: end-to-end stage runner batches (pre-processing, model, "
        f"post-processing) on scikit-image sample images, {threads} intra-op thread(s), "
        f"warm-up {_WARMUP}, repeats {_REPEATS}; {machine_description()}"
    )
    for module, (runner, pool) in runners.items():
        def run(batch_size: int, runner=runner, pool=pool) -> None:
            items = [pool[i % len(pool)] for i in range(batch_size)]
            runner.run_batch(items, batch_size)

        timings = measure_batches(
            run,
            OCR_BATCH_SIZES,
            warmup=_WARMUP,
            repeats=_REPEATS,
            progress=progress,
            description=f"{OCR_PROFILE_NAMES[module]} on {hardware}",
        )
        write_profile(folder / f"{OCR_PROFILE_NAMES[module]}.yaml", OCR_PROFILE_NAMES[module], hardware, timings, source)
