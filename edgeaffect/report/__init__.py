"""One static report page: everything the toolkit wrote about its models (``edgeaffect report --html``)."""
