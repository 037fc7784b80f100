"""Readers for the input formats: hardware catalogs, profiles (YAML or CSV) and applications.

Every error names the file, the field and the fix. Schemas are pydantic models; they are
converted to the frozen records of :mod:`harpagon.model` after validation.
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harpagon.errors import ConfigError
from harpagon.model.application import Application, Module
from harpagon.model.hardware import HardwareCatalog, HardwareType
from harpagon.model.profiles import PROFILE_STATISTICS, Profile, ProfileSet

__all__ = [
    "load_application",
    "load_hardware",
    "load_profiles",
    "shipped_app_names",
    "shipped_data_path",
    "resolve_application",
]


class _HardwareSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    price_per_hour: float = Field(gt=0)
    available: int | None = Field(default=None, ge=0)
    description: str = ""
    source: str = ""
    threads: int | None = Field(default=None, ge=1)


class _CatalogSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hardware: list[_HardwareSpec] = Field(min_length=1)


class _ProfileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1)
    latency_ms: dict[str, dict[int, float]] = Field(min_length=1)
    source: str = ""
    p99_latency_ms: dict[str, dict[int, float]] | None = None

    @field_validator("latency_ms", "p99_latency_ms")
    @classmethod
    def _positive(cls, value: dict[str, dict[int, float]] | None) -> dict[str, dict[int, float]] | None:
        for hardware, by_size in (value or {}).items():
            if not by_size:
                raise ValueError(f"hardware {hardware!r} lists no batch sizes")
            for batch_size, latency in by_size.items():
                if batch_size < 1:
                    raise ValueError(f"batch size must be >= 1, got {batch_size} on {hardware!r}")
                if not latency > 0:
                    raise ValueError(
                        f"latency must be > 0 ms, got {latency} for {hardware!r} batch {batch_size}"
                    )
        return value


class _ModuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    profile: str = Field(min_length=1)
    overhead_ms: float = Field(default=0.0, ge=0)
    rate_factor: float = Field(default=1.0, gt=0)


class _ApplicationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    rate: float = Field(gt=0)
    slo_ms: float = Field(gt=0)
    modules: list[_ModuleSpec] = Field(min_length=1)
    edges: list[tuple[str, str]] = []
    description: str = ""


def _describe(err: ValidationError, path: Path | str) -> str:
    lines = []
    for item in err.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        got = item.get("input")
        shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
        lines.append(f"{path}: field '{where}': {item['msg']}{shown}")
    return "\n".join(lines)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: expected a YAML file, found a directory") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from err


def _parse(spec: type[BaseModel], data: Any, path: Path | str, what: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a YAML mapping in this {what} file, got {type(data).__name__}"
        )
    try:
        return spec.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err, path)) from err


def shipped_data_path(*parts: str) -> Path:
    """Return the path of a file or folder shipped in ``harpagon/data``."""
    return Path(str(resources.files("harpagon").joinpath("data", *parts)))


def load_hardware(path: str | Path | None = None) -> HardwareCatalog:
    """Read a hardware catalog YAML file (the shipped GPU catalog when ``path`` is None)."""
    path = Path(path) if path is not None else shipped_data_path("hardware", "gpus.yaml")
    spec = _parse(_CatalogSpec, _read_yaml(path), path, "hardware catalog")
    types: dict[str, HardwareType] = {}
    for item in spec.hardware:
        if item.name in types:
            raise ConfigError(f"{path}: hardware type {item.name!r} is listed twice")
        types[item.name] = HardwareType(**item.model_dump())
    return HardwareCatalog(types, str(path))


def _profile_from_file(path: Path) -> Profile:
    spec = _parse(_ProfileSpec, _read_yaml(path), path, "profile")
    return Profile(spec.model, spec.latency_ms, spec.source, str(path), spec.p99_latency_ms)


def _profiles_from_csv(path: Path) -> ProfileSet:
    try:
        handle = path.open(newline="")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    # statistic -> model -> series (framework, precision) -> hardware -> batch size -> ms
    tables: dict[str, dict[str, dict[tuple[str, ...], dict[str, dict[int, float]]]]] = {"mean": {}, "p99": {}}
    first_line: dict[tuple[str, str, tuple[str, ...], str, int], int] = {}
    with handle:
        reader = csv.DictReader(handle)
        required = {"model", "hardware", "batch_size", "latency_ms"}
        missing = required - set(reader.fieldnames or [])
        if missing:
            raise ConfigError(
                f"{path}: profile CSV lacks column(s) {', '.join(sorted(missing))}; "
                "the header must contain model,hardware,batch_size,latency_ms"
            )
        series_columns = [c for c in ("framework", "precision") if c in (reader.fieldnames or [])]
        for line, row in enumerate(reader, start=2):
            statistic = _csv_statistic(row.get("statistic"))
            if statistic is None:
                continue
            try:
                batch_size = int(row["batch_size"])
                latency = float(row["latency_ms"])
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{path}: line {line}: batch_size must be an integer and latency_ms a number, "
                    f"got {row['batch_size']!r} and {row['latency_ms']!r}"
                ) from None
            if batch_size < 1 or not latency > 0:
                raise ConfigError(
                    f"{path}: line {line}: batch_size must be >= 1 and latency_ms > 0, "
                    f"got {batch_size} and {latency}"
                )
            series = tuple(row[column] or "" for column in series_columns)
            key = (statistic, row["model"], series, row["hardware"], batch_size)
            if key in first_line:
                raise ConfigError(
                    f"{path}: line {line}: duplicate row for model {row['model']!r} on "
                    f"{row['hardware']!r} at batch size {batch_size} ({statistic}, first on line "
                    f"{first_line[key]}); keep one row per model, hardware, batch size and statistic"
                )
            first_line[key] = line
            by_series = tables[statistic].setdefault(row["model"], {})
            by_series.setdefault(series, {}).setdefault(row["hardware"], {})[batch_size] = latency
    table = tables["mean"]
    if not table:
        raise ConfigError(f"{path}: profile CSV has no rows")

    # A model measured with several frameworks or precisions gets one profile per series.
    # p99 rows of a series without mean rows are dropped, because planners need the mean.
    profiles: dict[str, Profile] = {}
    for model, by_series in table.items():
        for series, by_hw in by_series.items():
            name = model if len(by_series) == 1 else ":".join((model, *series))
            p99 = tables["p99"].get(model, {}).get(series)
            profiles[name] = Profile(name, by_hw, f"{path}", str(path), p99)
    return ProfileSet(profiles, str(path))


def _csv_statistic(value: str | None) -> str | None:
    # The statistic of a CSV row: mean-like names, p99, or None for rows that are skipped.
    if value is None or value in ("avg", "mean", "", "derived_from_throughput"):
        return "mean"
    if value == "p99":
        return "p99"
    return None


def load_profiles(path: str | Path | None = None, statistic: str = "mean") -> ProfileSet:
    """Read profiles from a directory of YAML files, one YAML file, or a CSV file.

    With ``path=None`` the shipped GPU profiles are read. A CSV file needs the columns
    ``model,hardware,batch_size,latency_ms``. Its optional ``statistic`` column marks mean
    rows (``avg``, ``mean``, ``derived_from_throughput`` or empty) and ``p99`` rows; rows
    with any other statistic are skipped. When the CSV has ``framework`` or ``precision``
    columns and a model appears with several of them, each series becomes a profile named
    ``model:framework:precision``.

    ``statistic`` chooses what the returned profiles' ``latency_ms`` holds: ``"mean"`` (the
    ``latency_ms`` of a YAML file, the mean rows of a CSV) or ``"p99"`` (``p99_latency_ms``
    or the p99 rows, falling back to the mean where no p99 was measured). Every profile
    also keeps its p99 table in ``p99_latency_ms``.

    Raises
    ------
    ConfigError
        If the path is missing, a file is malformed, a model appears twice, a CSV repeats
        a row for the same model, series, hardware, batch size and statistic, or
        ``statistic`` is not ``mean`` or ``p99``.
    """
    if statistic not in PROFILE_STATISTICS:
        raise ConfigError(
            f"unknown profile statistic {statistic!r}; use one of {', '.join(PROFILE_STATISTICS)}"
        )
    return _load_mean_profiles(path).with_statistic(statistic)


def _load_mean_profiles(path: str | Path | None) -> ProfileSet:
    path = Path(path) if path is not None else shipped_data_path("profiles")
    if path.is_dir():
        files = sorted(list(path.glob("*.yaml")) + list(path.glob("*.yml")))
        if not files:
            raise ConfigError(f"{path}: directory holds no profile YAML files (*.yaml)")
        profiles: dict[str, Profile] = {}
        for file in files:
            profile = _profile_from_file(file)
            if profile.model in profiles:
                raise ConfigError(
                    f"{file}: model {profile.model!r} is already defined in "
                    f"{profiles[profile.model].path}; keep one file per model"
                )
            profiles[profile.model] = profile
        return ProfileSet(profiles, str(path))
    if not path.exists():
        raise ConfigError(f"{path}: profile path not found; pass a directory, a YAML or a CSV file")
    if path.suffix.lower() == ".csv":
        return _profiles_from_csv(path)
    profile = _profile_from_file(path)
    return ProfileSet({profile.model: profile}, str(path))


def load_application(path: str | Path) -> Application:
    """Read an application YAML file."""
    path = Path(path)
    spec = _parse(_ApplicationSpec, _read_yaml(path), path, "application")
    return Application(
        name=spec.name,
        rate=spec.rate,
        slo_ms=spec.slo_ms,
        modules=tuple(Module(**m.model_dump()) for m in spec.modules),
        edges=tuple((a, b) for a, b in spec.edges),
        path=str(path),
    )


def shipped_app_names() -> list[str]:
    """Return the names of the shipped sample applications."""
    return sorted(p.stem for p in shipped_data_path("apps").glob("*.yaml"))


def resolve_application(name_or_path: str | Path) -> Application:
    """Read an application from a file path or by the name of a shipped sample."""
    path = Path(name_or_path)
    if path.exists():
        return load_application(path)
    shipped = shipped_data_path("apps", f"{name_or_path}.yaml")
    if shipped.exists():
        return load_application(shipped)
    raise ConfigError(
        f"{name_or_path}: no such application file, and no shipped application of that name; "
        f"shipped: {', '.join(shipped_app_names())}"
    )
