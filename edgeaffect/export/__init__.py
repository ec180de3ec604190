"""Export: trained run -> QAT -> files in every registered format -> verification -> manifest.

A format is one module in ``export/formats/`` that calls ``register_format``."""

from edgeaffect.export.formats import ExportFormat, get_format, list_formats, register_format

__all__ = ["ExportFormat", "get_format", "list_formats", "register_format"]
