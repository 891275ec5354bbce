"""litecoord's benchmark suite: a script package, not tests.

Run everything with ``python -m benchmarks.run`` (``--quick`` for a smoke run
of about a minute). Each module is one group of measurements:

* :mod:`benchmarks.cycles`: raw ``sqlite3`` with the same schema, SQL and
  pragmas vs the embedded backend, full acquire + renew + complete cycles;
* :mod:`benchmarks.fairness`: each worker's share and the worst write wait at
  8 processes;
* :mod:`benchmarks.peers`: huey, persist-queue and litequeue at equal
  durability, with duplicates and losses counted;
* :mod:`benchmarks.rest`: cycles through the REST server vs a minimal WSGI
  app doing the same SQL on the same server;
* :mod:`benchmarks.scale`: acquire latency and ``status()`` time at 1k, 100k
  and 1M items.

Every run checks that no item was handed out twice and none was lost.
"""
