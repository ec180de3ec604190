"""The deep spectrotemporal depression network (Jabbar, Uddin et al., Sci. Rep. 2025) as a
family: speech -> 3-channel log-Mel segments (features.py) and VLNEP histograms
(vlnep.py) -> EfficientNet-B3 spectral stream + dual-stream transformer (model.py) -> the
BDI-II score. Work in progress (issue 14): features, VLNEP and the model are built; see
models/spectrotemporal/README.md for what is not yet."""
