"""Training the three stages: their steps, losses, the resumable loop, the multi-process launcher, validation and the
notebooks' plots. Their typed configs are in utils.core.train_config."""
