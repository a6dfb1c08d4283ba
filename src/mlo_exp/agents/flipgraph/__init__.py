"""The flip-graph search (Kauers-Moosbauer): random walks over decompositions of one rank.

Not a game player: the agent keeps ``walks`` complete decompositions of ``T<n,m,p>`` and
changes them with moves that preserve the tensor exactly:

* **flip** — two terms sharing a factor (up to sign), ``a(x)b(x)c + a(x)b'(x)c'``, become
  ``a(x)(b + s*b')(x)c + a(x)b'(x)(c' - s*c)`` (``s = +-1``; over ``Z2`` additions are XORs).
  Over ``Z`` a flip that leaves the coefficient bound ``|x| <= bound`` is not made.
* **reduction** — after a flip, a term that became zero is dropped, and two terms sharing two
  factors merge into one (``a(x)b(x)c + a(x)b(x)c' = a(x)b(x)(c + c')``): rank -1. Over Z2
  also three or more terms sharing a factor whose factors in another mode are linearly
  dependent: ``a(x)b1(x)c1 + a(x)b2(x)c2 + a(x)(b1+b2)(x)c3`` becomes
  ``a(x)b1(x)(c1+c3) + a(x)b2(x)(c2+c3)`` (Kauers and Moosbauer's reduction; the groups a
  flip changed are checked).
* **plus transition** — after ``plateau_flips`` attempts without a reduction, or when no flip
  is possible, two terms that differ in every mode, ``a(x)b(x)c + a'(x)b'(x)c'``, become
  ``a(x)(b - b')(x)c + (a' + a)(x)b'(x)c' + a(x)b'(x)(c - c')``: rank +1, allowed while the
  walk's rank stays at most its best rank + its **plus limit** ``slack``. No two of the
  three terms share two factors, so no reduction takes the step straight back.

The search around the moves never idles:

* **bounded paths** — a walk that made ``path_flips`` attempts since its best rank last fell
  (or that reached a dead end: no flip possible, no plus transition allowed) goes back to its
  best scheme; its plus limit rises by one (up to ``max_plus_slack``: the **adaptive limit**
  of Arai, Ichikawa and Hukushima), and falls back to ``plus_slack`` when it improves.
* **population** — distinct schemes of the best rank (and the rank above), by a digest of
  their terms (:mod:`~mlo_exp.agents.flipgraph.population`); a walk idle for
  ``restart_after`` episodes restarts from the scheme the fewest walks started from, so the
  walks spread over the frontier rather than all copying one leader. A dead end (no two
  terms share a factor: no flip leaves it) is never kept, and a walk whose best scheme is one
  restarts at once; the agent keeps the lowest-rank scheme any walk had as its ``record``,
  which every episode reports.
* **refused reductions** (Z2, ``min_flippable``) — a reduction to a rank no lower than the
  record whose result has fewer than ``min_flippable`` flippable values (1: a dead end) is
  undone, and the walk stays on the scheme before the flip (``refused_reductions`` per
  episode); a reduction below the record is always kept. A walk that bounced between a dead
  end and one plus transition above it walks on at the rank above instead.
* **pool** (``pool_dir``) — one search over the jobs of a multirun: every ``pool_every``
  episodes a job publishes its best verified scheme there and takes the pool's best when it
  beats its own.
Every attempt that changed nothing is counted (``useless_attempts`` per episode).

Files: :mod:`.agent` (the agent: episodes, restarts, checkpoints), :mod:`.walks` (the walks'
arrays per representation and the factory :func:`~.walks.make_walks`), the compiled kernels
:mod:`.kernel_z2` (packed words, O(1) partners), :mod:`.kernel_int` (over Z; ternary with
bound 1), :mod:`.c3` (C3-symmetric schemes), with their shared hash :mod:`.index`; :mod:`.start`
(starting schemes), :mod:`.population` and :mod:`.projection` (walks one size larger,
restricted to the run's shape: ``agent.project_from``).
"""

from mlo_exp.agents.flipgraph.agent import FlipGraphAgent

__all__ = ["FlipGraphAgent"]
