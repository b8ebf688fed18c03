"""Running the model: checkpoints, whole-video prediction, the training loop."""
