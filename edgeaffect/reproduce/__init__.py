"""``edgeaffect reproduce PAPER --data CORPUS``: a paper's protocols on the user's copy of
a corpus (recipes: each family's ``reproduce.toml``), ours beside the paper's figures,
resumable run by run, written to ``OUT/reproduce.json`` (schema: ``schema.py``)."""
