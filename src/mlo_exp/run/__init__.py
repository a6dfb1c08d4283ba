"""One run's lifecycle: build it (:mod:`.experiment`), play its episodes (:mod:`.trainer`),
checkpoint and resume it (:mod:`.checkpoint`, :mod:`.resume`), plot it (:mod:`.plotting`),
benchmark what it found (:mod:`.benchmark_stage`) and summarise sweeps of runs
(:mod:`.sweep`)."""
