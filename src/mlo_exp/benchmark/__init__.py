"""The benchmark stage: a verified algorithm as a block matrix product, timed against the
backend's plain product (CuPy on a CUDA device, NumPy on the CPU).

Modules: ``backend`` (array module, device facts, timers, the scoped math mode), ``plan``
(addition-reduced evaluation plans: shared subexpressions, basis changes), ``schemes``
(library schemes in any order of their sides), ``execute`` (algorithm -> block
product), ``measure`` (checks, then timing, for one algorithm over sizes), ``store`` (the
SQLite results registry), ``report`` (tables and plots), ``stage`` (the post-run callback),
``cli`` (``mlo-benchmark``).
"""
