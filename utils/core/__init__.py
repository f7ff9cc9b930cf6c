"""The foundations every layer uses: files, images, paths, runtime (device, precision), settings (the stages' typed
configs), checkpoints, the networks, the metric."""
