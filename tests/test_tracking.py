import io
import json

from rewards.diagnostics import language_mix, repetition, text_diagnostics
from rlreason.rl.alarms import CollapseAlarm
from rlreason.rl.timing import rollout_metrics
from rlreason.tracking import ConsoleLogger, JSONLLogger, MultiLogger, NullLogger


def test_jsonl_logger_writes_one_line_per_call_and_tables_beside_it(tmp_path):
    lg = JSONLLogger(tmp_path)
    lg.log({"a": 1.0, "b": float("nan")}, step=3)
    lg.log({"a": 2.0}, step=4)
    lg.log_table("samples", ["prompt", "completion"], [["1+1=", "<answer>2</answer>"]], step=4)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows == [{"step": 3, "a": 1.0, "b": "nan"}, {"step": 4, "a": 2.0}]
    table = json.loads((tmp_path / "samples.jsonl").read_text())
    assert table == {"step": 4, "prompt": "1+1=", "completion": "<answer>2</answer>"}


def test_multi_logger_fans_out_and_console_prints_selected_metrics(tmp_path):
    out = io.StringIO()
    lg = MultiLogger(JSONLLogger(tmp_path), ConsoleLogger(every=2, stream=out), NullLogger())
    lg.log({"accuracy": 0.5, "lr": 1e-3}, step=2)
    lg.log({"accuracy": 0.7}, step=3)
    lg.log({"eval/greedy_acc": 0.9, "eval/greedy_acc_lo": 0.8}, step=3)
    text = out.getvalue()
    assert "[step 2] accuracy=0.5 lr=0.001" in text and "[step 3]" not in text.split("[eval")[0]
    assert "[eval step 3] greedy_acc=0.900" in text and "greedy_acc_lo" not in text
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3


def test_diagnostics_measure_thinking_lengths_verification_and_language_mix():
    texts = [
        "<think>7+5=12, wait let me check</think><answer>12</answer>",
        "<answer>11</answer>",
        "<think>先算 then add</think><answer>3</answer>",
    ]
    d = text_diagnostics(texts)
    assert d["rollout/think_rate"] == 2 / 3
    m = rollout_metrics([30, 10, 20], ["stop", "length", "eos"], [True, False, True])
    assert m["rollout/length_correct"] == 25 and m["rollout/length_wrong"] == 10
    assert m["rollout/truncation_rate"] == 1 / 3
    assert d["rollout/self_verify_rate"] == 0.5
    assert language_mix("先算 then add") == 1 - 2 / 4  # 2 Han chars, 2 Latin words
    assert repetition("abcdefgh" * 4) > 0.5 and repetition("abcdefghijklmnop") == 0.0


def test_collapse_alarm_fires_once_when_format_rises_while_accuracy_falls():
    alarm = CollapseAlarm(window=3, delta=0.05)
    fired = []
    for step in range(1, 7):
        up = step > 3
        fired += alarm.update(
            step,
            {
                "reward/format/mean": 0.9 if up else 0.2,
                "accuracy": 0.1 if up else 0.6,
                "rollout/length_mean": 40.0,
                "rollout/repetition": 0.1,
            },
        )
    assert len(fired) == 1 and "format" in fired[0]
    assert alarm.metrics()["alarm/format_up_accuracy_down"] == 1.0
    assert alarm.metrics()["alarm/length_collapse"] == 0.0 and alarm.fired[0]["step"] == 6


def test_collapse_alarm_detects_length_collapse():
    alarm = CollapseAlarm(window=2)
    for step, length in enumerate([40, 40, 40, 40, 10, 10], start=1):
        alarm.update(step, {"rollout/length_mean": float(length)})
    assert [f["kind"] for f in alarm.fired] == ["length_collapse"]
