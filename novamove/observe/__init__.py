"""What an operator watches a run with: the JSON event stream (stream.py), Prometheus metrics
(metrics.py) and the HTML timeline of a run (timeline.py).

Everything here is an observer of the journal (novamove.engine.journal.Observer) or a reader of
it: the engine never imports this package, it only calls the observers it is given.
"""
