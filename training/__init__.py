"""SageMaker script-mode training: ``train.py`` and the model it trains, exports and evaluates."""
