"""The typed configuration tree of a run, and its validation.

These dataclasses are the schema; Hydra (experiments/) only selects and overrides them, and
registers them in its ConfigStore so a typo in an override is an error. `validate(cfg)` checks
combinations before any work starts and says what to change. Registries are consulted by name
(advantage estimators, aggregations, KL kinds, ratio levels, dtypes), never by `if` chains;
`env` is the base of the per-env nodes experiments/schema.py generates from the env registry.

Not here: building objects from the config (experiments/build.py), the loop (rl/trainer.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
WANDB_MODES = ("offline", "online", "disabled")
ROUTES = ("base", "student_base", "pure_rl", "sft_rl", "distill_sft", "distill_onpolicy")


@dataclass
class ModelConfig:
    source: str = "base"  # MODEL_SOURCES key: base, base_small, scratch, local, hf, run
    path: Optional[str] = None  # the directory of a local / hf model, or a run (source=run)
    flavour: str = "llama"  # for "scratch"
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    max_seq_len: int = 256
    dtype: str = "float32"  # compute dtype (DTYPES key); trainable weights stay fp32 (precision.py)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    tf32: bool = True  # CUDA: TF32 tensor cores for fp32 matmuls
    gradient_checkpointing: bool = False
    attn_padding: str = "mask"  # padded forwards: mask (dense key mask) | compact (no mask)


@dataclass
class LoRAConfig:
    """LoRA adapters: the `lora.*` settings and the record `apply_lora` keeps on the model."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    rslora: bool = False
    targets: tuple[str, ...] = LORA_TARGETS
    enabled: bool = False  # training applies adapters only when true

    def __post_init__(self) -> None:
        self.targets = tuple(self.targets)  # YAML lists arrive as lists


@dataclass
class SamplingConfig:
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_k: Optional[int] = None
    top_p: Optional[float] = None
    max_batch_tokens: Optional[int] = None  # generation sub-batches: rows x (prompt + new) budget
    merge_lora: bool = True  # fold adapters into the weights for the generation call (restored)
    engine: str = "eager"  # ENGINES key: eager | static | cuda_graph | compile


@dataclass
class AlgoConfig:
    advantage: str = "grpo"  # ADVANTAGES key
    aggregation: str = "seq_mean_token_mean"  # AGGREGATIONS key
    group_size: int = 8  # G: samples per prompt
    epochs: int = 1  # mu: inner passes over each rollout batch
    minibatches: int = 1  # optimizer steps per epoch
    micro_batch_tokens: int = 8192  # token budget of one forward/backward
    clip_low: float = 0.2
    clip_high: float = 0.2
    dual_clip: Optional[float] = None
    ratio_level: str = "token"  # token | sequence (GSPO)
    kl_coef: float = 0.0
    kl_kind: str = "k3"
    log_kl: bool = True  # compute reference log-probs even at kl_coef=0
    entropy_coef: float = 0.0
    mask_truncated: bool = False
    dynamic_sampling: bool = False
    max_refill_rounds: int = 0
    gamma: float = 1.0  # gae only
    lam: float = 0.95
    value_coef: float = 0.5
    value_clip: Optional[float] = 0.2
    logprob_chunk: int = 64


@dataclass
class OptimConfig:
    lr: float = 1e-4  # peak learning rate
    initial_lr: float = 0.0
    min_lr: float = 1e-5
    warmup_steps: int = 5  # more than train.steps: clamped to train.steps, with a note
    warmup_ratio: Optional[float] = None  # share of train.steps; replaces warmup_steps when set
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    grad_clip: Optional[float] = 1.0
    clip_after_warmup: bool = False


@dataclass
class TrainConfig:
    steps: int = 100
    prompts_per_step: int = 16
    stop_after: Optional[int] = None  # end after N steps with a checkpoint (schedule spans steps)
    resume: Optional[str] = None  # a run directory to continue
    save_every: int = 50
    max_bad_steps: int = 3  # abort after this many non-finite steps in a row
    progress: bool = True
    threads: Optional[int] = None  # CPU threads; None: automatic (rlreason.threads)
    parallel: str = "replicate"  # data-parallel weights: replicate (all-reduced grads) | fsdp2


@dataclass
class EvalConfig:
    """`eval.*` of both commands: rlreason-train's periodic evals and rlreason-eval.

    Training evals sample at `sampling.*` (temperature, top_k, top_p); rlreason-eval at the
    `eval.*` ones, with its strategies, arms and outputs (experiments/eval.py).
    """

    samples: int = 4  # sampled completions per problem
    n_problems: int = 200  # first N tasks of the env's eval split
    max_new_tokens: Optional[int] = None  # None: sampling.max_new_tokens (64 in rlreason-eval)
    seed: int = 1234  # sampling and bootstrap seed
    every: int = 20  # training: eval every N steps (0: only before and after training)
    k: list[int] = field(default_factory=lambda: [1, 4, 16])
    temperature: float = 1.0
    top_k: Optional[int] = None
    top_p: Optional[float] = None
    strategies: list[str] = field(default_factory=lambda: ["sample", "beam"])
    beam_width: int = 4
    length_penalty: float = 1.0
    length_norm: str = "simple"  # rlreason.sampling.beam.LENGTH_PENALTIES key
    templates: list[str] = field(default_factory=list)  # [] -> the env's template
    run_dir: Optional[str] = None  # evaluate this run's latest checkpoint
    run_env: bool = True  # with run_dir: the run's env, template and rewards
    adapter: Optional[str] = None  # a save_adapter directory applied to `model`
    out: Optional[str] = None  # output directory
    batch_prompts: int = 64
    n_boot: int = 1000


@dataclass
class WandbConfig:
    mode: str = "offline"  # offline | online | disabled
    project: str = "rlreason"
    entity: Optional[str] = None
    group: Optional[str] = None
    name: Optional[str] = None
    tags: list[str] = field(default_factory=list)


@dataclass
class LogConfig:
    wandb: WandbConfig = field(default_factory=WandbConfig)
    out_dir: str = "runs"
    console_every: int = 10
    samples_every: int = 25  # W&B table of sample completions
    run_dir: Optional[str] = None  # explicit run directory (else out_dir/<name>/<short name>)
    overrides: list[str] = field(default_factory=list)  # the command line's overrides


@dataclass
class TeacherConfig:
    """A frozen teacher for `rlreason-sample` and `algo.advantage=onpolicy_distill`: `source` none |
    run (a run directory's latest policy) | base | base_small | local | hf (`path`: the run or
    model directory), an optional LoRA `adapter` on top; it must share the student's tokenizer."""

    source: str = "none"
    path: Optional[str] = None  # the run directory (source=run) or the model directory
    adapter: Optional[str] = None  # a LoRA adapter directory (rlreason or PEFT) on top
    dtype: Optional[str] = None  # compute dtype; None: model.dtype


@dataclass
class SFTConfig:
    """`rlreason-sft` on `{"prompt", "completion"}` JSONL lines: the prompt is the exact text the
    model is conditioned on, the loss covers the completion (+ EOS when `add_eos`)."""

    data: Optional[str] = None  # training JSONL
    eval_data: Optional[str] = None  # held-out JSONL; None: hold out `eval_fraction` of `data`
    eval_fraction: float = 0.05
    batch_size: int = 32  # sequences per optimizer step
    micro_batch_tokens: int = 8192  # token budget of one forward/backward (gradient accumulation)
    epochs: Optional[float] = None  # set: train.steps = ceil(epochs * lines / batch_size)
    add_eos: bool = True


@dataclass
class SampleConfig:
    """`rlreason-sample`: rejection sampling of traces from `teacher.*` on the env's prompts."""

    out: Optional[str] = None  # output JSONL; None: <run dir>/samples.jsonl
    n: int = 8  # samples per prompt
    split: str = "train"  # train | eval
    n_problems: Optional[int] = None  # the first N prompts of the split; None: all
    accept: list[str] = field(default_factory=lambda: ["correct", "format"])  # all must hold
    max_per_prompt: Optional[int] = None  # keep at most this many distinct completions
    batch_prompts: int = 64  # prompts per generation call


@dataclass
class RoutesConfig:
    """`experiment=r1_routes_tiny` (job=routes): the seed's four routes side by side."""

    routes: list[str] = field(default_factory=lambda: list(ROUTES))
    student: str = "base_small"  # model.source of the student
    rl_eval_every: int = 5  # greedy evals during RL (steps-to-target curves)
    target: float = 0.95  # rl_steps_to_<target>: first RL step whose greedy accuracy reaches it
    sample_n: int = 4  # rejection-sampling draws per train prompt
    sample_problems: Optional[int] = None  # train prompts to sample; None: all
    sft_steps: int = 150  # SFT steps of sft_rl's cold start and of distill_sft
    sft_lr: float = 1.0e-3
    sft_rl_steps: Optional[int] = None  # RL steps after the cold start; None: train.steps
    distill_steps: int = 50  # on-policy distillation steps
    distill_lr: float = 1.0e-3
    scaling: bool = True  # maj@4, best-of-4 and beam 4 of every route


@dataclass
class EnvConfig:
    """The env's name and template; experiments/schema.py adds each env's own options."""

    name: str = "arithmetic"
    template: Optional[str] = None  # None: the env's default template


@dataclass
class RewardTerm:
    weight: Optional[float] = None  # None: not configured (the env's default weight, if any)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    reward: dict[str, RewardTerm] = field(default_factory=dict)  # overrides of the env's defaults
    reward_gate: Optional[str] = None  # other components count only where this one is > 0
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    routes: RoutesConfig = field(default_factory=RoutesConfig)
    job: str = "rl"  # experiments/jobs.py JOBS key: rl | sft | sample | routes
    seed: int = 0
    name: str = "run"


class ConfigError(ValueError):
    """An invalid combination of settings; the message says what to change."""


def _check(ok: bool, msg: str, errors: list[str]) -> None:
    if not ok:
        errors.append(msg)


def validate(cfg: Config, world: int = 1) -> Config:
    """Raise ConfigError listing every invalid setting (and the fix) before any work starts.
    `world`: the number of data-parallel processes (torchrun's WORLD_SIZE)."""
    from rlreason.devices import device_problem_of
    from rlreason.model.gpt import DTYPES
    from rlreason.rl.advantages import ADVANTAGES
    from rlreason.rl.losses import AGGREGATIONS, KL_ESTIMATORS, RATIO_LEVELS
    from rlreason.sampling.engine import ENGINES

    a, t, o, e = cfg.algo, cfg.train, cfg.optim, []
    _check(
        a.advantage in ADVANTAGES,
        f"algo.advantage={a.advantage!r}: choose one of {sorted(ADVANTAGES)}",
        e,
    )
    _check(
        a.aggregation in AGGREGATIONS,
        f"algo.aggregation={a.aggregation!r}: choose one of {sorted(AGGREGATIONS)}",
        e,
    )
    _check(
        a.kl_kind in KL_ESTIMATORS,
        f"algo.kl_kind={a.kl_kind!r}: choose one of {sorted(KL_ESTIMATORS)}",
        e,
    )
    _check(
        a.ratio_level in RATIO_LEVELS,
        f"algo.ratio_level={a.ratio_level!r}: choose one of {list(RATIO_LEVELS)}",
        e,
    )
    group_estimator = a.advantage in ADVANTAGES and ADVANTAGES[a.advantage].grouped
    _check(
        a.group_size >= 2 or not group_estimator,
        f"algo.group_size={a.group_size}: {a.advantage} compares samples within a group, "
        "so set algo.group_size >= 2 (or use algo=ppo, whose GAE needs no group)",
        e,
    )
    _check(a.group_size >= 1, "algo.group_size must be >= 1", e)
    _check(
        not a.dynamic_sampling or a.group_size >= 2,
        "algo.dynamic_sampling drops groups with equal rewards, so it needs algo.group_size >= 2",
        e,
    )
    rows = t.prompts_per_step * a.group_size
    _check(
        a.minibatches >= 1 and rows % max(a.minibatches, 1) == 0,
        f"train.prompts_per_step * algo.group_size = {rows} rollouts is not divisible by "
        f"algo.minibatches={a.minibatches}: change one of them",
        e,
    )
    _check(a.epochs >= 1, f"algo.epochs={a.epochs}: must be >= 1", e)
    _check(a.clip_low >= 0 and a.clip_high >= 0, "algo.clip_low/clip_high must be >= 0", e)
    _check(
        a.dual_clip is None or a.dual_clip > 1,
        f"algo.dual_clip={a.dual_clip}: must be > 1 or null",
        e,
    )
    _check(a.micro_batch_tokens >= 1, "algo.micro_batch_tokens must be >= 1", e)
    _check(
        t.steps >= 1 and t.prompts_per_step >= 1,
        "train.steps and train.prompts_per_step must be >= 1",
        e,
    )
    _check(
        t.stop_after is None or 1 <= t.stop_after <= t.steps,
        f"train.stop_after={t.stop_after}: must lie in [1, train.steps={t.steps}]",
        e,
    )
    _check(o.warmup_steps >= 0, f"optim.warmup_steps={o.warmup_steps} must be >= 0", e)
    _check(
        o.warmup_ratio is None or 0 <= o.warmup_ratio <= 1,
        f"optim.warmup_ratio={o.warmup_ratio} must lie in [0, 1] (a share of train.steps) or null",
        e,
    )
    _check(
        o.lr > 0 and o.min_lr >= 0 and o.initial_lr >= 0,
        "optim.lr must be > 0; min_lr, initial_lr >= 0",
        e,
    )
    _check(cfg.sampling.temperature >= 0, "sampling.temperature must be >= 0", e)
    _check(cfg.sampling.max_new_tokens >= 1, "sampling.max_new_tokens must be >= 1", e)
    _check(
        cfg.sampling.engine in ENGINES,
        f"sampling.engine={cfg.sampling.engine!r}: choose one of {list(ENGINES)}",
        e,
    )
    _check(
        cfg.log.wandb.mode in WANDB_MODES,
        f"log.wandb.mode={cfg.log.wandb.mode!r}: choose one of {list(WANDB_MODES)}",
        e,
    )
    _check(
        cfg.model.dtype in DTYPES,
        f"model.dtype={cfg.model.dtype!r}: choose one of {sorted(DTYPES)}",
        e,
    )
    device_problem = device_problem_of(cfg.model.device)
    _check(device_problem is None, f"model.device={cfg.model.device!r}: {device_problem}", e)
    _check(
        t.prompts_per_step % world == 0,
        f"train.prompts_per_step={t.prompts_per_step} is not divisible by the {world} "
        "data-parallel processes (torchrun --nproc_per_node): each rank takes an equal share "
        "of the prompts, so change one of them",
        e,
    )
    _check(
        world == 1 or not cfg.model.device.startswith("cuda:"),
        f"model.device={cfg.model.device!r} with {world} processes: every rank would share one "
        "GPU; use model.device=auto or cuda (rank r runs on cuda:LOCAL_RANK)",
        e,
    )
    if e:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(e))
    return cfg


def resolve_schedule(cfg: Config) -> list[str]:
    """Turn `optim.warmup_ratio` into `optim.warmup_steps` and clamp a warmup longer than the run
    to `train.steps`; returns notes to print. Changes `cfg` in place (config.yaml records it)."""
    o, steps, notes = cfg.optim, cfg.train.steps, []
    if o.warmup_ratio is not None:
        o.warmup_steps = round(o.warmup_ratio * steps)
        notes.append(f"optim.warmup_ratio={o.warmup_ratio}: {o.warmup_steps} warmup steps")
    if o.warmup_steps > steps:
        notes.append(
            f"optim.warmup_steps={o.warmup_steps} exceeds train.steps={steps}: warming up over "
            f"all {steps} steps (set optim.warmup_ratio to scale warmup with the run)"
        )
        o.warmup_steps = steps
    return notes
