"""grokspec: declarative, comparable grokking experiments.

A YAML spec declares a dataset and a learner; ``grokspec run`` trains it, logs uniform
metrics to MLflow and reports when (and whether) the model grokked.
"""

__version__ = "0.1.0"
