"""The durable readings stream in Redis that feeds the alarm evaluator: its keys, clients and
entry codec, the append, the lag report (``entries``), and the database backlog of what
could not be appended while Redis was away (``backlog``)."""
