"""The backends behind the ``Coordinator`` protocol: each owns its SQL (or wire),
its connections and its transactions; validation, result types and errors are
shared from the top of the package."""
