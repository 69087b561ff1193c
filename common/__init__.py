"""The ground every app stands on: the error family, REST helpers, model-service helpers.

It imports no app of the project; every app may import it.
"""
