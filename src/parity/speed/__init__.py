"""`parity bench`: the speed and price pillar as a benchmark (workloads, load, metrics, price).

Modules: `workloads` (shapes and unique prompts), `load` (the load generator), `metrics`
(per-request metrics, aggregates, goodput), `price`, `tokenizer` (local token counts),
`chart` (the speed-vs-price SVG), `plan` (steps and presets), `run` (running and storing),
`report` (tables and files), `command` (the CLI command).
"""
