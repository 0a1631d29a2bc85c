"""Bridges odoo-ai's `--json` documents to GitHub Actions (standard library only).

    python .github/scripts/report.py summary deploy|promote|prune|build|housekeeping RESULT.json [ENV]
        Markdown appended to $GITHUB_STEP_SUMMARY (stdout when it is not set). A missing
        or unreadable RESULT.json (the command died before it printed) still gives a line
        saying so. Always exits 0: a summary never fails a job.
    python .github/scripts/report.py outputs RESULT.json NAME=FIELD[.FIELD...]...
        `NAME=value` lines appended to $GITHUB_OUTPUT (stdout when it is not set), e.g.
        `tag=new_tag` or `image=images.script-runner.ref`. Exits 1 if a field is missing.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def _load(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _failure(result: dict[str, Any]) -> list[str]:
    lines = []
    if result.get("error"):
        phase = f" in phase `{result['failed_phase']}`" if result.get("failed_phase") else ""
        lines.append(f"**Error{phase}:** {_cell(result['error'])}")
    if result.get("hint"):
        lines.append(f"**Hint:** {_cell(result['hint'])}")
    if result.get("output"):
        lines += ["", "<details><summary>last lines</summary>", "", "```", str(result["output"]).rstrip(), "```",
                  "", "</details>"]
    return lines


def deploy(result: dict[str, Any], env: str) -> list[str]:
    """`odoo-ai deploy`/`rollback` write their own summary under GitHub Actions (verdict,
    digests, the phases as a Mermaid chart, notes), also when they fail before recording a
    release; only a refused input (exit 2: nothing was done) is said here."""
    if result.get("exit_code") != 2:
        return []
    kind = result.get("kind") or "deploy"
    return [f"### {kind} to {result.get('env') or env}: **refused** (bad input, nothing changed)", ""] + _failure(result)


def promote(result: dict[str, Any], env: str) -> list[str]:
    if result.get("error"):
        return [f"### promote to {env}: **failed**", ""] + _failure(result)
    lines = [f"### promoted `{result.get('tag')}` as `{result.get('new_tag')}` "
             f"(digests from the {result.get('source')})", "", "| image | digest |", "|---|---|"]
    lines += [f"| `{_cell(i.get('ref'))}` | `{_cell(i.get('digest'))}` |" for i in (result.get("images") or {}).values()]
    return lines + [f"- note: {_cell(n)}" for n in result.get("notes") or []]


def prune(result: dict[str, Any], env: str) -> list[str]:
    if result.get("error"):
        return ["### prune-images: **failed**", ""] + _failure(result)
    dry = result.get("dry_run")
    count = result.get("would_delete", result.get("deleted", 0))
    lines = [f"### prune-images{' (dry run)' if dry else ''}: {'would delete' if dry else 'deleted'} {count}, "
             f"kept {result.get('kept', 0)} (keep the last {result.get('keep')} releases)", "",
             "| action | image | why |", "|---|---|---|"]
    for registry in result.get("registries") or []:
        for repo in registry.get("repositories") or []:
            for image in repo.get("images") or []:
                name = f"{repo.get('repository')}:{','.join(image.get('tags') or []) or image.get('digest', '')[:19]}"
                lines.append(f"| {image.get('action')} | `{_cell(name)}` | {_cell('; '.join(image.get('reasons') or []))} |")
    lines += [f"- not pruned: {_cell(why)}" for why in (result.get("skipped_envs") or {}).values()]
    lines += [f"- {kind}: {_cell(text)}" for kind in ("notes", "warnings", "failures") for text in result.get(kind) or []]
    return lines


def build(result: dict[str, Any], env: str) -> list[str]:
    if result.get("error"):
        return [f"### build for {env}: **failed**", ""] + _failure(result)
    lines = [f"### images `{result.get('tag')}` (commit `{result.get('sha')}`)", "",
             "| target | image ID (built and tested) | pushed as | digest | registry has that image |",
             "|---|---|---|---|---|"]
    for target, image in (result.get("images") or {}).items():
        lines.append(f"| {target} | `{_cell(image.get('id'))}` | `{_cell(image.get('ref'))}` | "
                     f"`{_cell(image.get('digest'))}` | {'yes' if image.get('verified') else '**not checked**'} |")
    verify = result.get("verify")
    if isinstance(verify, dict) and verify.get("scanned"):
        lines.append(f"- key scan: {verify.get('findings', 0)} findings in {verify.get('layers', '?')} layers")
    for repo in result.get("addon_repos") or []:
        lines.append(f"- addon repository `{_cell(repo.get('url'))}` at `{_cell(repo.get('commit'))}`")
    lines += [f"- note: {_cell(n)}" for n in result.get("notes") or []]
    return lines


def housekeeping(result: dict[str, Any], env: str) -> list[str]:
    if result.get("error"):
        return ["### housekeeping: **failed**", ""] + _failure(result)
    dry = " (dry run)" if result.get("dry_run") else ""
    local = result.get("images") or {}
    count = local.get("would_delete", local.get("deleted", 0))
    lines = [f"### housekeeping{dry}", "",
             f"- local images: {'would delete' if dry else 'deleted'} {count}, kept {local.get('kept', 0)} "
             f"(keep the last {result.get('keep')} releases)"]
    cache = result.get("build_cache")
    if isinstance(cache, dict):
        lines.append(f"- builder cache unused for {cache.get('older_than_hours')}h: "
                     f"{'removed' if cache.get('ok') else '**failed**'} ({cache.get('reclaimed') or '?'})")
    lines += ["", "| env | snapshots removed | snapshots kept | Odoo log | notes |", "|---|---|---|---|---|"]
    for stack in result.get("stacks") or []:
        snaps = stack.get("snapshots") or {}
        log = stack.get("log") or {}
        state = "rotated" if log.get("rotated") else ("absent" if log.get("bytes") is None else f"{log.get('bytes')} B")
        lines.append(f"| {_cell(stack.get('env'))} | {len(snaps.get('removed') or [])} | {len(snaps.get('kept') or [])} "
                     f"| {state if log else '-'} | {_cell('; '.join(stack.get('notes') or []))} |")
    lines += [f"- **failed:** {_cell(f)}" for f in result.get("failures") or []]
    return lines


KINDS = {"deploy": deploy, "promote": promote, "prune": prune, "build": build, "housekeeping": housekeeping}


def _append(variable: str, text: str) -> None:
    target = os.environ.get(variable)
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)


def summary(kind: str, path: str, env: str) -> int:
    result = _load(path)
    if result is None:
        lines = [f"### {kind} {env}: no result", "",
                 "The command ended before it printed its JSON document: see this step's log above."]
    else:
        lines = KINDS[kind](result, env)
    if lines:
        _append("GITHUB_STEP_SUMMARY", "\n".join(lines) + "\n\n")
    return 0


def outputs(path: str, specs: list[str]) -> int:
    result = _load(path)
    if result is None:
        print(f"report.py: {path}: no JSON document", file=sys.stderr)
        return 1
    lines = []
    for spec in specs:
        name, _, field = spec.partition("=")
        value: Any = result
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, str) or not value or "\n" in value:
            print(f"report.py: {path}: no string at {field!r}", file=sys.stderr)
            return 1
        lines.append(f"{name}={value}\n")
    _append("GITHUB_OUTPUT", "".join(lines))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "summary" and argv[1] in KINDS:
        return summary(argv[1], argv[2], argv[3] if len(argv) > 3 else "")
    if len(argv) >= 3 and argv[0] == "outputs" and all("=" in spec for spec in argv[2:]):
        return outputs(argv[1], argv[2:])
    print(f"usage: report.py summary {'|'.join(KINDS)} RESULT.json [ENV]\n"
          "       report.py outputs RESULT.json NAME=FIELD[.FIELD...]...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
