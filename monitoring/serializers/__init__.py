"""Request parsing and response rendering, one module per resource as in ``views/``: readings
and their history, the CTG endpoint, strip notes. No business rules here."""
