"""edgeaffect: published affective-computing models, from the desktop to small devices."""

__version__ = "0.1.0"
