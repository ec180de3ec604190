"""Export formats, registered by name. A new format is one module that calls
``register_format`` and is listed in ``_MODULES``."""

from edgeaffect.export.formats import ExportFormat, get_format, list_formats, register_format

__all__ = ["ExportFormat", "get_format", "list_formats", "register_format"]
