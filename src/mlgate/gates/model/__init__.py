"""Model training and validation gates: model.training, model.artifact, and the attacks and audits after it."""
