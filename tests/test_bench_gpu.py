"""`rlreason-bench gpu --device cpu --tiny --skip-hf` prints one JSON with every section, and the
7B memory plan's weight and KV-cache bytes match sums done by hand from the Qwen2.5-7B shape."""

import json

from experiments.bench import BENCHES
from experiments.bench.gpu import main, memory_plan


def test_the_tiny_cpu_run_prints_one_json_object_with_positive_timings(capsys):
    main(["--device", "cpu", "--tiny", "--skip-hf"])
    out = json.loads(capsys.readouterr().out)  # the whole stdout is one object
    assert BENCHES["gpu"] == "experiments.bench.gpu"
    assert {"versions", "device", "dtype", "shape", "engine", "grpo_step", "hf"} <= set(out)
    assert set(out["engines"]) == {"eager", "static"}  # CPU: the CUDA-only loops are not tried
    for loop in out["engines"].values():
        assert loop["tokens"] == 8 * 16 and loop["tokens_per_s"] > 0
    assert out["versions"]["torch"] and out["device"]["type"] == "cpu"
    assert out["shape"]["rows"] == 8 and out["shape"]["d_model"] == 64  # 4 prompts x 2
    for run in ("lora_unmerged", "lora_merged"):
        assert out["engine"][run]["tokens"] == 8 * 16  # no EOS: every row makes 16 tokens
        assert out["engine"][run]["tokens_per_s"] > 0
    for k in ("gen_s", "ref_s", "update_s", "step_s"):
        assert out["grpo_step"][k] > 0
    assert out["hf"]["status"] == "skipped"
    assert out["memory_plan_7b"]["params"] == 7_615_616_512


def test_the_7b_plan_counts_weight_bytes_and_kv_cache_bytes_from_the_shape():
    V, d, L, H, Hkv, hd, ff = 152_064, 3_584, 28, 28, 4, 128, 18_944
    per_layer = (
        (d * H * hd + H * hd)  # q_proj with bias
        + 2 * (d * Hkv * hd + Hkv * hd)  # k_proj, v_proj with bias
        + H * hd * d  # o_proj
        + 3 * d * ff  # gate, up, down
        + 2 * d  # two RMSNorms
    )
    params = 2 * V * d + L * per_layer + d  # untied embedding and lm_head, final norm
    assert params == 7_615_616_512  # Qwen2.5-7B's published 7.62B
    plan = memory_plan()
    assert plan["params"] == params
    assert plan["bytes"]["weights_bf16"] == 2 * params
    rows, tokens = 64 * 8, 512 + 1024
    assert plan["bytes"]["kv_cache"] == L * 2 * Hkv * hd * tokens * rows * 2 == 45_097_156_608
    assert plan["gib"]["kv_cache_bf16"] == 42.0
    # LoRA r16 on q,k,v,o,gate,up,down: r x (in + out) each
    lora = L * 16 * ((d + H * hd) * 2 + 2 * (d + Hkv * hd) + 3 * (d + ff))
    assert plan["lora_params"] == lora
    assert plan["gib"]["lora_params_grads_adamw_fp32"] == round(16 * lora / 2**30, 3)
    assert set(plan["fits_80gb"]) == {
        "generation", "generation_merge_backup_on_cpu", "train", "train_grad_ckpt"
    }  # fmt: skip
