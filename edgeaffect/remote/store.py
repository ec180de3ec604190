"""The measurement store, as the remote commands name it (it lives in the roofline layer,
where the predictor and the budgets read it)."""

from edgeaffect.roofline.measured import file_cost, load_measurements, save_measurement  # noqa: F401

__all__ = ["file_cost", "load_measurements", "save_measurement"]
