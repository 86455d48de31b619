"""Models: networks, architectures by name, model files, import, training, precision."""
