"""The learners' torch modules, one module per learner, imported by each spec's
``build()`` (see :mod:`grokspec.learners`): a spec validates without importing torch."""
