"""Risk models (风险模型): scorecards, gradient boosting, validation, the model registry and scoring."""
