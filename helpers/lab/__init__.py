"""The measuring lab: how much governance costs, measured honestly.

* Load: :mod:`.loadgen` (closed, open and paired loops), :mod:`.workload` (the queries and
  users), :mod:`.llm_call` (step 2 timed through the real SDKs), :mod:`.loop_thread` (an
  event loop for notebook cells), :mod:`.load_results` (results files).
* Analysis: :mod:`.stats` (percentiles, ECDFs, paired differences), :mod:`.pipeline_stats`,
  :mod:`.latency_floor` (decision, transport and gateway floors), :mod:`.idle_penalty`
  (warm against idle), :mod:`.overhead_parts` (a paired overhead split into its parts, and
  the verdict against a claim), :mod:`.timing` (timing one request's steps).
* Charts: :mod:`.latency_plots` and :mod:`.overhead_plots`.
* :mod:`.machine`: what machine a result came from, and the provenance line the measuring
  notebooks print.

The lab drives the gateway from outside, as an application would: it may import the client,
the gateway's engine (for in-process floors) and the shared modules; the gateway never
imports the lab, and nothing imports :mod:`helpers.bench` (import-linter contracts in
``pyproject.toml``).
"""
