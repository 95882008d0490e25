"""``router label``: turn logged prompts into a routing table with real costs and graded quality.

logs (JSONL/Parquet, the readers and quarantine of ``router route-logs``) -> dedup, seeded sample
-> every prompt to every model of a backends file (``fanout``: async calls under per-backend
concurrency and requests-per-minute limits, retries with backoff, a budget) -> a grader per row
(``graders``: exact match, multiple-choice letter, numeric, code tests, LLM-as-judge) -> a
checkpoint journal (``checkpoint``; a re-run pays for no call twice) -> the wide table of
``router.data.table`` plus ``label_summary.json`` (``assemble``, ``summary``).
"""
