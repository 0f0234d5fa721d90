"""Eval reports: JSON (the record), Markdown (for a pull request) and one self-contained HTML page
with inline SVG plots (per-type precision/recall, confusion of expected vs detected types, latency).

Every report records what produced it: agent, model, provider, prompt hashes, policy hash, commit.
``compare`` lines up two JSON reports: metric deltas and the cases whose status changed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

from evals.metrics import NONE
from evals.runner import CaseResult
from tools.fixtures import SuiteError

__all__ = [
    "build_report",
    "compare",
    "compare_html",
    "compare_markdown",
    "html_page",
    "load_report",
    "markdown",
    "provenance",
    "write_comparison",
    "write_reports",
]

REPO = Path(__file__).resolve().parents[1]
PROMPTS = REPO / "prompts"
HEADLINE = (
    "cases",
    "passed",
    "pass_rate",
    "pass_hat_k",
    "violations",
    "action_accuracy",
    "approver_role_accuracy",
    "citation_validity",
    "llm_fallbacks",
    "grounding_failures",
    "latency_p50_s",
    "latency_p95_s",
    "llm_calls_per_case",
    "tokens_per_case",
)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def prompt_hashes() -> dict[str, str]:
    """SHA-256 (first 16 hex digits) of every prompt template (prompts/, and the baseline's), by path."""
    files = (
        sorted(p for p in PROMPTS.iterdir() if p.is_file() and p.suffix != ".py") if PROMPTS.is_dir() else []
    )
    files.append(REPO / "evals" / "baseline_prompt.txt")
    return {
        p.relative_to(REPO).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        for p in files
        if p.is_file()
    }


def provenance(
    *,
    agent: str,
    provider: str,
    model: str,
    policy,
    suite: str,
    repeat: int,
    started_at: dt.datetime | None = None,
) -> dict[str, Any]:
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "agent": agent,
        "provider": provider,
        "model": model,
        "suite": suite,
        "repeat": repeat,
        "policy_hash": policy.policy_hash,
        "prompt_hashes": prompt_hashes(),
        "commit": commit,
        "dirty": bool(dirty) if dirty is not None else None,
        "started_at": (started_at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "host": platform.node(),
    }


def build_report(
    meta: dict[str, Any], summary: dict[str, Any], runs: list[list[CaseResult]]
) -> dict[str, Any]:
    return {"meta": meta, "summary": summary, "runs": [[r.as_dict() for r in run] for run in runs]}


def load_report(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read the report: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}: not a JSON eval report (line {exc.lineno}: {exc.msg})") from exc
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{path}: not a JSON eval report (not UTF-8 text)") from exc
    except RecursionError:
        raise SuiteError(f"{path}: not a JSON eval report (nested too deeply)") from None
    if (
        not isinstance(data, dict)
        or not {"meta", "summary", "runs"} <= set(data)
        or not isinstance(data["meta"], dict)
        or not isinstance(data["summary"], dict)
        or not isinstance(data["runs"], list)
    ):
        raise SuiteError(f"{path}: not an eval report (expected meta, summary and runs)")
    return data


# ------------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, list):
        return str(len(v))
    return str(v)


def markdown(report: dict[str, Any]) -> str:
    meta, s = report["meta"], report["summary"]
    lines = [
        f"# Eval report: {meta['suite']} — agent {meta['agent']}",
        "",
        f"model `{meta['model']}` · provider `{meta['provider']}` · commit `{(meta.get('commit') or '?')[:12]}`"
        f"{' (uncommitted changes)' if meta.get('dirty') else ''} · policy `{meta['policy_hash'][:12]}` · "
        f"{meta['started_at']}",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {k} | {_fmt(s.get(k))} |" for k in HEADLINE],
        f"| incomplete (checks not run) | {len(s['incomplete'])} |",
        "",
    ]
    if s["failed"]:
        lines += ["## Failed cases", ""]
        by_key = {r["key"]: r for r in report["runs"][0]}
        for key in s["failed"]:
            r = by_key.get(key)
            bad = [
                f"{c['name']}: {c['detail']}" for c in (r or {}).get("checks", []) if c["status"] == "fail"
            ]
            lines.append(f"- `{key}`: " + "; ".join(bad + (r or {}).get("violations", [])))
        lines.append("")
    if s["violation_details"]:
        lines += ["## Invariant violations", "", *[f"- {v}" for v in s["violation_details"]], ""]
    if s["not_run"]:
        lines += ["## Checks not run", "", "| check | times | why |", "|---|---|---|"]
        lines += [
            f"| {name} | {v['checks']} | {'; '.join(v['reasons'])} |" for name, v in s["not_run"].items()
        ]
        lines.append("")
    if s.get("skipped"):
        lines += ["## Checks skipped (not asked of the case)", ""]
        lines += [f"- {name}: `{why}`" for name, whys in s["skipped"].items() for why in whys]
        lines.append("")
    lines += ["## Per exception type", "", "| type | support | precision | recall |", "|---|---|---|---|"]
    lines += [
        f"| {t} | {v['support']} | {_fmt(v['precision'])} | {_fmt(v['recall'])} |"
        for t, v in s["per_type"].items()
    ]
    lines += ["", "## Prompts", "", *[f"- `{k}` {v}" for k, v in meta["prompt_hashes"].items()], ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# HTML with inline SVG plots
# ------------------------------------------------------------------------------------------------


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.find("<svg") :]


def plots(summary: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    plt.rcParams["svg.hashsalt"] = "copilot-evals"  # stable ids: the same run gives the same page
    out = {}
    types = list(summary["per_type"])
    fig, ax = plt.subplots(figsize=(8, 3.2))
    xs = range(len(types))
    prec = [summary["per_type"][t]["precision"] or 0 for t in types]
    rec = [summary["per_type"][t]["recall"] or 0 for t in types]
    ax.bar([x - 0.2 for x in xs], prec, width=0.4, label="precision")
    ax.bar([x + 0.2 for x in xs], rec, width=0.4, label="recall")
    ax.set_xticks(list(xs), [t.replace("_", "_\n", 1) for t in types], fontsize=6)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    ax.set_title("Detection per exception type", fontsize=9)
    out["per_type"] = _svg(fig)
    plt.close(fig)

    labels = [*types, NONE]
    conf = summary["confusion"]
    grid = [[conf.get(r, {}).get(c, 0) for c in labels] for r in labels]
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.imshow(grid, cmap="Blues")
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=6)
    ax.set_yticks(range(len(labels)), labels, fontsize=6)
    ax.set_xlabel("detected", fontsize=8)
    ax.set_ylabel("expected", fontsize=8)
    ax.set_title("Expected vs detected exception types", fontsize=9)
    out["confusion"] = _svg(fig)
    plt.close(fig)

    secs = [r["seconds"] * 1000 for r in results if r["status"] != "error"]
    fig, ax = plt.subplots(figsize=(6, 2.6))
    if secs:
        ax.hist(secs, bins=min(30, max(5, len(secs) // 4)))
    ax.set_xlabel("ms per case (input to recommendation and explanation)", fontsize=8)
    ax.set_title(
        f"Latency (p50 {_fmt(summary['latency_p50_s'])} s, p95 {_fmt(summary['latency_p95_s'])} s)",
        fontsize=9,
    )
    out["latency"] = _svg(fig)
    plt.close(fig)
    return out


def html_page(report: dict[str, Any]) -> str:
    meta, s = report["meta"], report["summary"]
    svgs = plots(s, report["runs"][0] if report["runs"] else [])
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(_fmt(s.get(k)))}</td></tr>" for k in HEADLINE)
    cases = []
    for r in report["runs"][0] if report["runs"] else []:
        bad = "; ".join(f"{c['name']}: {c['detail']}" for c in r["checks"] if c["status"] != "pass")
        cases.append(
            f"<tr class='{esc(r['status'])}'><td>{esc(r['key'])}</td><td>{esc(r['status'])}</td>"
            f"<td>{esc(str(r['action']))}</td><td>{r['seconds'] * 1000:.0f}</td><td>{esc(bad)}</td></tr>"
        )
    meta_rows = "".join(
        f"<tr><td>{esc(k)}</td><td>{esc(json.dumps(v) if isinstance(v, dict) else str(v))}</td></tr>"
        for k, v in meta.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Eval report: {esc(meta["suite"])} ({esc(meta["agent"])})</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px;vertical-align:top}} tr.fail td,tr.error td{{background:#fde2e2}}
tr.incomplete td{{background:#fff6d6}} .plots svg{{max-width:100%;height:auto}}
</style></head><body>
<h1>Eval report: {esc(meta["suite"])} — agent {esc(meta["agent"])}</h1>
<h2>Summary</h2><table>{rows}<tr><td>failed</td><td>{esc(", ".join(s["failed"]) or "none")}</td></tr>
<tr><td>incomplete</td><td>{len(s["incomplete"])}</td></tr></table>
<h2>Run</h2><table>{meta_rows}</table>
<div class="plots"><h2>Plots</h2>{svgs["per_type"]}{svgs["confusion"]}{svgs["latency"]}</div>
<h2>Cases</h2><table><tr><th>case</th><th>status</th><th>recommended</th><th>ms</th><th>checks not passed</th></tr>
{"".join(cases)}</table>
</body></html>
"""


def _write(data: dict[str, Any], out_dir: str | Path, stem: str, to_markdown, to_html) -> dict[str, Path]:
    """``stem``.json, .md and .html of ``data`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{stem}.json", "markdown": out / f"{stem}.md", "html": out / f"{stem}.html"}
    paths["json"].write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    paths["markdown"].write_text(to_markdown(data), encoding="utf-8")
    paths["html"].write_text(to_html(data), encoding="utf-8")
    return paths


def write_reports(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    return _write(report, out_dir, "report", markdown, html_page)


# ------------------------------------------------------------------------------------------------
# compare two runs
# ------------------------------------------------------------------------------------------------


def _per_case(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": r["status"],
        "llm_calls": r.get("llm_calls", 0),
        "tokens": r.get("prompt_tokens", 0) + r.get("completion_tokens", 0),
        "seconds": round(r.get("seconds", 0.0), 3),
        "action": r.get("action"),
        "violations": len(r.get("violations") or []),
    }


def _status_of(side: dict[str, Any] | None) -> str | None:
    return side["status"] if side else None


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two runs side by side (first repetition of each): metric deltas B − A, every case's status,
    LLM calls, tokens, seconds and violations in both, and the cases whose status changed."""
    metrics = {}
    for k in HEADLINE:
        va, vb = a["summary"].get(k), b["summary"].get(k)
        delta = round(vb - va, 4) if isinstance(va, int | float) and isinstance(vb, int | float) else None
        metrics[k] = {"a": va, "b": vb, "delta": delta}
    ra = {r["key"]: _per_case(r) for r in (a["runs"][0] if a["runs"] else [])}
    rb = {r["key"]: _per_case(r) for r in (b["runs"][0] if b["runs"] else [])}
    keys = sorted(set(ra) | set(rb))
    cases = [{"case": k, "a": ra.get(k), "b": rb.get(k)} for k in keys]
    changed = [
        {"case": c["case"], "a": _status_of(c["a"]), "b": _status_of(c["b"])}
        for c in cases
        if _status_of(c["a"]) != _status_of(c["b"])
    ]
    return {
        "a": {k: a["meta"].get(k) for k in ("agent", "model", "provider", "commit", "suite")},
        "b": {k: b["meta"].get(k) for k in ("agent", "model", "provider", "commit", "suite")},
        "metrics": metrics,
        "cases": cases,
        "changed": changed,
    }


def _side(c: dict[str, Any] | None) -> list[str]:
    if c is None:
        return ["(not run)", "–", "–", "–"]
    return [
        c["status"] + (f" ({c['violations']} violations)" if c["violations"] else ""),
        str(c["llm_calls"]),
        f"{c['tokens']:,}",
        f"{c['seconds']:.1f}",
    ]


def _who(side: dict[str, Any]) -> str:
    return f"{side['agent']} · {side['model']} · {(side.get('commit') or '?')[:12]} · {side['suite']}"


def compare_markdown(diff: dict[str, Any]) -> str:
    """The comparison as Markdown: headline metrics, then every case in both runs."""
    lines = [
        "# Eval comparison",
        "",
        f"- A: {_who(diff['a'])}",
        f"- B: {_who(diff['b'])}",
        "",
        "| metric | A | B | B − A |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {k} | {_fmt(m['a'])} | {_fmt(m['b'])} | {_fmt(m['delta'])} |" for k, m in diff["metrics"].items()
    ]
    lines += [
        "",
        f"{len(diff['changed'])} case(s) changed status.",
        "",
        "## Cases",
        "",
        "| case | A status | A LLM calls | A tokens | A s | B status | B LLM calls | B tokens | B s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| `{c['case']}` | " + " | ".join(_side(c["a"]) + _side(c["b"])) + " |" for c in diff["cases"]]
    return "\n".join(lines) + "\n"


def compare_html(diff: dict[str, Any]) -> str:
    """The comparison as one self-contained HTML page (no script, no outside resource)."""
    esc = html.escape
    metrics = "".join(
        f"<tr><td>{esc(k)}</td><td>{esc(_fmt(m['a']))}</td><td>{esc(_fmt(m['b']))}</td>"
        f"<td>{esc(_fmt(m['delta']))}</td></tr>"
        for k, m in diff["metrics"].items()
    )
    rows = []
    for c in diff["cases"]:
        cls = "changed" if _status_of(c["a"]) != _status_of(c["b"]) else ""
        cells = "".join(f"<td>{esc(v)}</td>" for v in _side(c["a"]) + _side(c["b"]))
        rows.append(f"<tr class='{cls}'><td>{esc(c['case'])}</td>{cells}</tr>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Eval comparison</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px}} tr.changed td{{background:#fff6d6}}
</style></head><body>
<h1>Eval comparison</h1>
<p>A: {esc(_who(diff["a"]))}<br>B: {esc(_who(diff["b"]))}</p>
<table><tr><th>metric</th><th>A</th><th>B</th><th>B − A</th></tr>{metrics}</table>
<p>{len(diff["changed"])} case(s) changed status (highlighted).</p>
<table><tr><th>case</th><th>A status</th><th>A LLM calls</th><th>A tokens</th><th>A s</th>
<th>B status</th><th>B LLM calls</th><th>B tokens</th><th>B s</th></tr>
{"".join(rows)}</table>
</body></html>
"""


def write_comparison(diff: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    return _write(diff, out_dir, "compare", compare_markdown, compare_html)
