"""The plug-in contract: what shared code asks a model family, and nothing else.

- ``Family`` (desktop side), ``DeviceAdapter`` (device side), ``Stage``, ``LiveInput``;
- task kinds (``ClassificationTask``, ``RegressionTask``, ``DetectionTask``) with their
  metrics, verification bounds and what ``predict`` prints;
- the registry of families and their model variants (``get_family``, ``get_model``);
- per-layer cost rows a variant's ``cost`` returns.

It sits below every stage (train, export, device, measure, roofline, demo) and above the
foundations (errors, io, media, features, runtime); the families sit above the stages.
NumPy only at import time: the device side uses it too.
"""

from edgeaffect.contract.family import (DeviceAdapter, Family, LiveInput, LiveSettings, PipelinePreset, Stage, TrainOption,
                                        paper_figures)
from edgeaffect.contract.registry import (ModelSpec, get_family, get_model, list_families, list_models, load_all,
                                          register_family, register_model)
from edgeaffect.contract.tasks import Bounds, ClassificationTask, DetectionTask, Prediction, RegressionTask, Task

__all__ = ["Bounds", "ClassificationTask", "DetectionTask", "DeviceAdapter", "Family", "LiveInput", "LiveSettings",
           "ModelSpec", "PipelinePreset", "Prediction", "RegressionTask", "Stage", "Task", "TrainOption", "get_family",
           "get_model", "list_families", "list_models", "load_all", "paper_figures", "register_family", "register_model"]
