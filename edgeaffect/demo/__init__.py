"""The live demo: capture (camera / video file, microphone / wav file) apart from
inference, features exactly as the bundle's manifest says, smoothing, overlay, events."""
