"""Trained models as MLflow "models from code": raw rows in, checks, predictions out.

Each ``*_model.py`` file here is the code MLflow runs when it loads a registered model; the
weights travel as a torch ``state_dict`` file (loaded with ``weights_only=True``) and the
preprocessing as JSON, so loading a model never unpickles an object. A ``manifest.json``
artifact holds the sha256 of every file of the model, which loading verifies (``pyfunc``,
``model``); ``server`` serves a model over HTTP behind a request cap.
"""
