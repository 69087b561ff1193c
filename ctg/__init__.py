"""Cardiotocogram analysis after FIGO 2015, in plain Python (no Django, no database).

The lowest rung of the house beside ``common``: the CTG endpoint (monitoring) and the CTG
alarm rules (alerts) both call :func:`ctg.analysis.ctg_analyse` on readings they loaded.
"""
