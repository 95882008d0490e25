"""Settings of ``router label``: the run (``LabelConfig``), grading (``GradingConfig``) and the judge
endpoint (``JudgeConfig``, the ``--judge`` YAML)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from router.backends import BackendConfig

GRADERS = ("exact", "choice", "numeric", "code", "judge")
# Graders that compare with a reference answer (the row must carry one).
REFERENCE_GRADERS = ("exact", "choice", "numeric")
UNLABELLED = "unlabelled"

DEFAULT_RUBRIC = """You are grading an AI assistant's answer to a user's prompt. Score the response \
from 0 (wrong or unhelpful) to 1 (fully correct and helpful){reference_clause}. Reply with only the \
score: a single number between 0 and 1, nothing else.

<prompt>{prompt}</prompt>
<response>{response}</response>{reference_block}"""


def _check_grader(name: str) -> str:
    if name not in GRADERS:
        raise ValueError(f"unknown grader {name!r}; choose from {', '.join(GRADERS)}")
    return name


class BackendLimits(BaseModel):
    """How hard ``router label`` may call one backend."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int = Field(8, ge=1, le=1024, description="Most requests in flight to this backend at once.")
    rpm: Optional[float] = Field(None, gt=0, description="Most requests started per minute (evenly spaced); none: no limit.")


class JudgeConfig(BackendConfig):
    """The ``--judge`` YAML: an OpenAI-compatible endpoint (fields of a backends-file entry) plus the
    rubric. The judge's answer must be only a number in [0, 1] (or ``{"score": x}``)."""

    rubric: str = Field(
        DEFAULT_RUBRIC,
        description="Prompt template with {prompt}, {response} and optionally {reference_clause} / {reference_block} "
        "(filled when the row has a reference answer) or {reference}.",
    )
    max_tokens: int = Field(16, ge=1, le=4096, description="max_tokens of a judgment (a number needs few).")
    concurrency: int = Field(8, ge=1, le=1024, description="Most judge requests in flight at once.")
    rpm: Optional[float] = Field(None, gt=0, description="Most judge requests started per minute.")

    @field_validator("rubric")
    @classmethod
    def _placeholders(cls, v: str) -> str:
        missing = [p for p in ("{prompt}", "{response}") if p not in v]
        if missing:
            raise ValueError(f"rubric must contain {' and '.join(missing)}")
        return v


def load_judge(path: str | Path) -> JudgeConfig:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--judge {str(path)!r} does not exist")
    with path.open() as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"--judge {str(path)!r}: expected a mapping of judge settings")
    return JudgeConfig.model_validate(data)


class GradingConfig(BaseModel):
    """Which grader scores a row, and what it compares with."""

    model_config = ConfigDict(extra="forbid")

    grader: Optional[str] = Field(
        None, description="Default grader: exact, choice, numeric, code or judge. Default: judge when a judge is "
        "configured, else exact when a reference field is given."
    )
    grader_field: Optional[str] = Field(None, description="Row field naming the row's grader (overrides the task's).")
    task_graders: dict[str, str] = Field(default_factory=dict, description="eval_name -> grader (overrides the default).")
    reference_field: Optional[str] = Field(None, description="Row field with the reference answer.")
    tests_field: Optional[str] = Field(None, description="Row field with Python test code (the code grader).")
    numeric_rel_tol: float = Field(1e-4, ge=0, description="Numeric grader: relative tolerance.")
    numeric_abs_tol: float = Field(1e-6, ge=0, description="Numeric grader: absolute tolerance.")
    code_timeout_s: float = Field(10.0, gt=0, le=600, description="Code grader: wall-clock limit of one test run.")
    agreement_grader: str = Field(
        "exact", description="Reference grader the judge is compared with on rows that have a reference (summary)."
    )

    @field_validator("grader")
    @classmethod
    def _grader(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else _check_grader(v)

    @field_validator("task_graders")
    @classmethod
    def _task_graders(cls, v: dict[str, str]) -> dict[str, str]:
        return {task: _check_grader(g) for task, g in v.items()}

    @field_validator("agreement_grader")
    @classmethod
    def _agreement(cls, v: str) -> str:
        if v not in REFERENCE_GRADERS:
            raise ValueError(f"agreement grader must be one of {', '.join(REFERENCE_GRADERS)}, got {v!r}")
        return v


class LabelConfig(BaseModel):
    """Everything one ``router label`` run needs."""

    model_config = ConfigDict(extra="forbid")

    input: str = Field(description="JSONL/Parquet file, folder or glob; local path or pyarrow filesystem URI.")
    backends: str = Field(description="Backends YAML (the service's format): every model in it labels every prompt.")
    out: str = Field(description="The routing table to write (.parquet).")
    work_dir: Optional[str] = Field(
        None, description="Folder of the checkpoint, quarantine and label_summary.json; default <out without .parquet>.label/"
    )
    judge: Optional[JudgeConfig] = Field(None, description="The LLM-as-judge endpoint and rubric (--judge YAML).")
    grading: GradingConfig = Field(default_factory=GradingConfig, description="Grader choice and options.")
    prompt_field: str = Field("prompt", min_length=1, description="Field holding a prompt string or an OpenAI messages list.")
    id_field: str = Field("id", min_length=1, description="Field holding the row id (JSONL rows without one get <file>:<line>).")
    eval_field: Optional[str] = Field(None, description="Field giving the row's task (eval_name); rows without one are 'unlabelled'.")
    models: Optional[list[str]] = Field(None, min_length=1, description="Label with these models of the backends file only.")
    sample: Optional[int] = Field(None, ge=1, description="Label a seeded random sample of this many unique prompts.")
    stratify_by: Optional[str] = Field(None, description="Sample proportionally within each value of this field.")
    seed: int = Field(0, description="Seed of the sample.")
    dedup: bool = Field(True, description="Label each distinct prompt text once (the first row keeps its id).")
    budget_usd: Optional[float] = Field(
        None, gt=0, description="Stop before the total spend (models + judge, this run and the checkpointed ones) exceeds this."
    )
    max_tokens: int = Field(1024, ge=1, le=1_000_000, description="max_tokens of every model call (also the budget's worst case).")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature of model calls.")
    concurrency: int = Field(8, ge=1, le=1024, description="Default per-backend limit of requests in flight.")
    rpm: Optional[float] = Field(None, gt=0, description="Default per-backend limit of requests started per minute.")
    backend_limits: dict[str, BackendLimits] = Field(default_factory=dict, description="model -> limits overriding the defaults.")
    timeout_s: float = Field(60.0, gt=0, description="Per-attempt timeout of a backend without its own timeout_s.")
    max_attempts: int = Field(4, ge=1, le=20, description="Attempts per call (retries on 429, 5xx, timeouts, connection errors).")
    backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubled on each retry (with jitter), at least Retry-After.")
    max_backoff_s: float = Field(30.0, ge=0, description="Longest retry delay.")
    max_consecutive_failures: int = Field(
        20, ge=1, description="A backend whose calls failed this many times in a row is taken as down for the rest of the run."
    )
    max_failed_share: float = Field(
        0.5, ge=0, le=1, description="A model whose share of failed cells exceeds this is left out of the table (its column failed)."
    )
    batch_size: int = Field(8, ge=1, le=10_000, description="Prompts per Ray Data batch (a checkpoint fsync per batch).")
    dry_run: bool = Field(False, description="Print the calls to make and their estimated cost; call nothing.")
    progress: bool = Field(True, description="Show a progress bar with the spend so far.")

    @field_validator("out")
    @classmethod
    def _parquet(cls, v: str) -> str:
        if not v.lower().endswith((".parquet", ".pq")):
            raise ValueError(f"must name a .parquet file, got {v!r}")
        if "://" in v:
            raise ValueError("must be a local path (the checkpoint next to it is appended to as calls finish)")
        return v

    @model_validator(mode="after")
    def _grading_possible(self) -> "LabelConfig":
        g = self.grading
        if g.grader is None:
            g.grader = "judge" if self.judge is not None else ("exact" if g.reference_field else None)
        if g.grader is None and not g.grader_field:
            raise ValueError("no way to grade answers: give --judge, or --reference-field (exact match), or --grader")
        used = {g.grader, *g.task_graders.values()} - {None}
        if "judge" in used and self.judge is None:
            raise ValueError("grader 'judge' needs --judge JUDGE.yaml")
        if used & set(REFERENCE_GRADERS) and not g.reference_field:
            raise ValueError(f"grader(s) {sorted(used & set(REFERENCE_GRADERS))} need --reference-field")
        if "code" in used and not g.tests_field:
            raise ValueError("grader 'code' needs --tests-field")
        return self

    @property
    def work_path(self) -> Path:
        if self.work_dir:
            return Path(self.work_dir).expanduser()
        out = Path(self.out).expanduser()
        return out.with_name(out.name.rsplit(".", 1)[0] + ".label")

    def limits_for(self, model: str) -> BackendLimits:
        return self.backend_limits.get(model) or BackendLimits(concurrency=self.concurrency, rpm=self.rpm)

    def extra_fields(self) -> tuple[str, ...]:
        """Row fields the run reads besides id and prompt (the prompt field itself: its messages are sent as they are)."""
        g = self.grading
        names = [self.prompt_field, self.eval_field, self.stratify_by, g.grader_field, g.reference_field, g.tests_field]
        return tuple(dict.fromkeys(n for n in names if n))
