"""Orchestration above the stages: the jobs that chain train, export, device and measure
(``edgeaffect pipeline``, ``reproduce``, ``reproducibility``, ``ablation``, the roofline
bounds, the demo benchmark's corpus). Below the CLI, which parses and calls these; above the
families, which it reaches only through the contract's registry."""
