"""ONNX Runtime sessions with the thread settings of a Harpagon worker.

A worker of a CPU hardware type runs its model with ``threads`` intra-op threads and one
inter-op thread, so that the profile measured for that type (``harpagon profile``) and the
served worker run the same way. Batches are plain numpy arrays. This module does no batching
or padding itself: the stage runners do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from harpagon.errors import ConfigError

__all__ = ["OnnxRunner", "TensorSpec", "ONNX_DTYPES"]

ONNX_DTYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}
"""ONNX Runtime type strings -> numpy dtypes, for the types a profiler can fill at random."""


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and type of one model input or output, as the ONNX file declares them."""

    name: str
    shape: tuple[int | str | None, ...]
    """Dimensions. A dynamic dimension is a string (its symbolic name) or ``None``."""
    type: str
    """ONNX Runtime type string, for example ``tensor(float)``."""

    @property
    def is_static(self) -> bool:
        """Whether every dimension is a fixed integer."""
        return all(isinstance(dim, int) for dim in self.shape)


class OnnxRunner:
    """One ONNX Runtime inference session.

    Parameters
    ----------
    model_path : str or Path
        The ``.onnx`` file.
    threads : int
        Intra-op threads (``SessionOptions.intra_op_num_threads``). Inter-op threads are 1.
    providers : sequence of str
        Execution providers in order of preference. Unavailable ones are skipped, and
        ``CPUExecutionProvider`` is always the last resort.

    Raises
    ------
    ConfigError
        If the file is missing or ONNX Runtime cannot load it, or ``threads`` < 1.
    """

    def __init__(
        self,
        model_path: str | Path,
        threads: int = 1,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        self.model_path = Path(model_path)
        if threads < 1:
            raise ConfigError(f"threads must be an integer >= 1, got {threads}")
        if not self.model_path.is_file():
            raise ConfigError(f"{self.model_path}: ONNX model file not found")
        self.threads = threads

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle intra-op threads sleep instead of spinning: workers share cores with the
        # frontend and with each other, and a spinning thread steals a core from them.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # ONNX Runtime logs warnings about unused initializers of these models at level 2.
        options.log_severity_level = 3

        available = set(ort.get_available_providers())
        chosen = [name for name in providers if name in available]
        if "CPUExecutionProvider" not in chosen:
            chosen.append("CPUExecutionProvider")
        try:
            self.session = ort.InferenceSession(
                str(self.model_path), sess_options=options, providers=chosen
            )
        except Exception as err:  # onnxruntime raises its own untyped errors on bad files
            raise ConfigError(f"{self.model_path}: ONNX Runtime failed to load the model: {err}") from err

        self.inputs = [_spec(arg) for arg in self.session.get_inputs()]
        self.outputs = [_spec(arg) for arg in self.session.get_outputs()]
        self._output_names = [spec.name for spec in self.outputs]

    @property
    def input(self) -> TensorSpec:
        """The model's only input. Raises ConfigError for a model with several inputs."""
        if len(self.inputs) != 1:
            names = ", ".join(spec.name for spec in self.inputs)
            raise ConfigError(f"{self.model_path}: expected one input, found {len(self.inputs)}: {names}")
        return self.inputs[0]

    @property
    def metadata(self) -> dict[str, str]:
        """Custom metadata of the ONNX file (for example the character list of a recogniser)."""
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def run(self, batch: np.ndarray | dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run the model once and return its outputs in declaration order.

        ``batch`` is the array of the only input, or a mapping input name -> array.
        """
        feed = batch if isinstance(batch, dict) else {self.input.name: batch}
        return self.session.run(self._output_names, feed)

    def __repr__(self) -> str:
        return f"OnnxRunner({str(self.model_path)!r}, threads={self.threads})"


def _spec(arg: ort.NodeArg) -> TensorSpec:
    shape = tuple(dim if isinstance(dim, int) else (dim or None) for dim in arg.shape)
    return TensorSpec(arg.name, shape, arg.type)
