"""The hostile-input benchmark (issue 13 Deliver 4): CPU time and peak memory per message.

Cases: the worst inputs of issues 12 and 13 (catastrophic filter patterns, unclosed html
tags, 100,000 References, a 5 MB file name, a 250,000-character From, ...), more of the
same kind, and every message of the shared corpus. For each message:

parse    in this process: ``parse_message`` + ``key_for`` + matching hostile filter
         patterns + the loop guard; CPU seconds (``time.process_time``), then peak memory
         of a second run (tracemalloc: Python allocations of that work).
import   the whole ``espomail email import FILE`` (parse, store, pipeline) in a child
         process per hostile case, into a fresh store: CPU seconds of the import itself
         (measured in the child after a warm-up import that loads the modules and creates the
         store) and the child's peak RSS
         (GNU time when installed, else an upper bound). The corpus is imported in one child,
         message by message: CPU per message and the child's peak RSS.

Targets: no message over 1 s of CPU or 200 MB of memory. The table shows every hostile
case and the slowest corpus messages; the worst figures close the report.

    .venv/bin/python -m bench.hostile [--no-corpus] [--no-import] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
CORPUS = ROOT.parent / "shared" / "corpus"
TARGET_CPU_S = 1.0
TARGET_MB = 200.0
PATTERNS = ("*a*a*a*a*a*b", "*a*a*b", "*@example.com", "*invoice*")

MIME = b"From: a@example.com\nSubject: hostile\nContent-Type: multipart/mixed; boundary=b\n\n"


def _part(headers: bytes, body: bytes = b"x") -> bytes:
    return b"--b\n" + headers + b"\n\n" + body + b"\n"


def _nested(depth: int) -> bytes:
    opening = b"".join(b"Content-Type: multipart/mixed; boundary=n%d\n\n--n%d\n" % (i, i) for i in range(depth))
    closing = b"".join(b"\n--n%d--\n" % i for i in reversed(range(depth)))
    return b"From: a@example.com\nSubject: deep\n" + opening + b"Content-Type: text/plain\n\nbottom" + closing


def _html(body: bytes) -> bytes:
    return b"From: a@example.com\nSubject: html\nContent-Type: text/html\n\n" + body


def hostile_cases() -> dict[str, Callable[[], bytes]]:
    """Name -> builder of the raw message (built lazily: some are 25 MB)."""
    name5 = b"n" * 5_000_000
    return {
        "subject 3,000 x 'a' (filter *a*a*a*a*a*b)": lambda: (
            b"From: a@example.com\nSubject: " + b"a" * 3_000 + b"\n\nx"
        ),
        "subject 200,000 x 'a' (filters)": lambda: b"From: a@example.com\nSubject: " + b"a" * 200_000 + b"\n\nx",
        "html '<a ' x 1,000,000": lambda: _html(b"<a " * 1_000_000),
        "html '<a ' x 100,000 (300 KB)": lambda: _html(b"<a " * 100_000),
        "html '&#1' x 2,000,000": lambda: _html(b"&#1" * 2_000_000),
        "html '<!--' x 2,000,000": lambda: _html(b"<!--" * 2_000_000),
        "References 100,000 ids": lambda: (
            b"From: a@example.com\nReferences: "
            + b" ".join(b"<%d.x@example.com>" % n for n in range(100_000))
            + b"\n\nx"
        ),
        "References 1,000,000 ids (25 MB)": lambda: (
            b"From: a@example.com\nReferences: " + b" ".join(b"<%d@e.x>" % n for n in range(1_000_000)) + b"\n\nx"
        ),
        "file name 5 MB (quoted)": lambda: (
            MIME
            + _part(b'Content-Type: application/pdf\nContent-Disposition: attachment; filename="' + name5 + b'.pdf"')
        ),
        "file name 5 MB (RFC 2231, 80,000 segments)": lambda: (
            MIME
            + _part(
                b"Content-Type: application/pdf\nContent-Disposition: attachment; "
                + b"".join(b"filename*%d*=utf-8''%s;\n " % (i, b"%C3%A9" * 10) for i in range(80_000))
            )
        ),
        "file name 5 MB (encoded words)": lambda: (
            MIME + _part(b'Content-Type: application/pdf; name="' + b"=?utf-8?q?abcdefghij?= " * 220_000 + b'"')
        ),
        "From 250,000 characters": lambda: b'From: "' + b"N" * 250_000 + b'" <alice@example.com>\n\nx',
        "To: '@' x 5,000,000": lambda: b"From: a@example.com\nTo: " + b"@" * 5_000_000 + b"\n\nx",
        "Cc: spaces x 1,000,000 then x": lambda: b"From: a@example.com\nCc: a@b, " + b" " * 1_000_000 + b"x\n\nx",
        "To: 500,000 addresses": lambda: b"From: a@example.com\nTo: " + b"a@b.example, " * 500_000 + b"\n\nx",
        "100,000 header fields": lambda: b"From: a@example.com\n" + b"X-F: 1\n" * 100_000 + b"\nx",
        "Subject 20 MB": lambda: b"From: a@example.com\nSubject: " + b"=?utf-8?q?x?= " * 1_400_000 + b"\n\nx",
        "MIME depth 5,000": lambda: _nested(5_000),
        "MIME 50,000 parts": lambda: MIME + _part(b"Content-Type: application/octet-stream") * 50_000 + b"--b--\n",
        "base64 junk 20 MB": lambda: (
            b"From: a@example.com\nContent-Transfer-Encoding: base64\n\n" + b"!@#$" * 5_000_000
        ),
        "quoted-printable '=' 20 MB": lambda: (
            b"From: a@example.com\nContent-Transfer-Encoding: quoted-printable\n\n" + b"=\n" * 10_000_000
        ),
        "text body 24 MB": lambda: b"From: a@example.com\n\n" + b"word " * 4_800_000,
        "NULs 10 MB": lambda: b"From: a@example.com\nSubject: \x00\x00\n\n" + b"\x00" * 10_000_000,
        "attachment 18 MB (base64)": lambda: (
            MIME + _part(b"Content-Type: application/zip\nContent-Transfer-Encoding: base64", b"QUJD" * 4_500_000)
        ),
    }


# -------------------------------------------------------------------------- measuring


def measure_parse(raw: bytes) -> dict:
    from espomail.mail.filters import Criteria, match
    from espomail.mail.loops import auto_reply_blocker
    from espomail.mail.parse import key_for, parse_message

    def work():
        email = parse_message(raw)
        key_for(email, raw)
        for pattern in PATTERNS:
            match(Criteria(from_pattern=pattern, subject_pattern=pattern, body_contains=("zz",)), email)
        auto_reply_blocker(email, ("noreply",), set(), "crm.example.com")
        return email

    started = time.process_time()
    email = work()
    cpu = time.process_time() - started
    tracemalloc.start()
    try:
        work()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    notes = "; ".join(email.defects[:2])
    return {"parse_cpu_s": cpu, "parse_peak_mb": peak / 1e6, "notes": notes}


def _child_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESPOMAIL_")}
    env.update(
        HOME=str(work),
        XDG_DATA_HOME=str(work / "data"),
        XDG_CONFIG_HOME=str(work / "config"),
        ESPOMAIL_DB=str(work / "espomail.db"),
        ESPOMAIL_MESSAGE_ID_DOMAIN="crm.example.com",
    )
    return env


def import_in_child(files: list[Path], work: Path) -> tuple[list[dict], float, bool]:
    """Import the files one by one in a fresh child and store: per file (cpu_s, result),
    and the child's peak RSS in MB (exact with GNU time)."""
    from bench.fetch import Child

    work.mkdir(parents=True, exist_ok=True)
    listing = work / "files.json"
    listing.write_text(json.dumps([str(path) for path in files]))
    child = Child(
        [sys.executable, "-m", "bench.hostile", "--child", str(listing)], _child_env(work), ROOT, timeout=3600
    )
    if child.returncode != 0:
        raise RuntimeError(f"import child failed: {child.error_line()}")
    return json.loads(child.stdout), child.peak_rss_mb, child.rss_exact


def child_main(listing: str) -> None:
    """In the child: import each file with the real CLI, CPU time of each import."""
    from click.testing import CliRunner

    from espomail.cli import main

    results = []
    runner = CliRunner()
    warm_up = Path(listing).with_name("warm-up.eml")  # loads the modules and creates the store, unmeasured
    warm_up.write_bytes(b"From: warm@example.com\nSubject: warm-up\nMessage-ID: <warm@up>\n\nx\n")
    for index, path in enumerate([str(warm_up), *json.loads(Path(listing).read_text())]):
        with runner.isolation() as (out, err, _):
            started = time.process_time()
            try:
                main(["email", "import", path, "--json"])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            cpu = time.process_time() - started
            stdout, stderr = out.getvalue().decode(errors="replace"), err.getvalue().decode(errors="replace")
        try:
            summary = json.loads(stdout)
            result = "new" if summary["new"] else "duplicate" if summary["duplicates"] else "failed"
        except (ValueError, KeyError):
            result = f"exit {code}: {(stderr or stdout)[:100].strip()}"
        if index:
            results.append({"import_cpu_s": cpu, "import": result})
    sys.stdout.write(json.dumps(results))


# ---------------------------------------------------------------------------- report


def run(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="hostile-", dir=OUT))
    rows: list[dict] = []
    hostile_files = []
    for name, build in hostile_cases().items():
        raw = build()
        path = work / "cases" / f"{len(hostile_files):02d}.eml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        hostile_files.append(path)
        rows.append({"case": name, "kind": "hostile", "bytes": len(raw), **measure_parse(raw)})
        print(f"  parsed {name}: {rows[-1]['parse_cpu_s']:.3f} s", file=sys.stderr, flush=True)
        del raw
    corpus_files = sorted(CORPUS.rglob("*.eml")) if args.corpus and CORPUS.is_dir() else []
    for path in corpus_files:
        raw = path.read_bytes()
        rows.append({"case": str(path.relative_to(CORPUS)), "kind": "corpus", "bytes": len(raw), **measure_parse(raw)})
    if args.imports:
        for index, path in enumerate(hostile_files):  # a fresh child and store per hostile case
            [result], rss, exact = import_in_child([path], work / f"import-{index:02d}")
            rows[index].update(result, import_rss_mb=rss, rss_exact=exact)
            print(f"  imported {rows[index]['case']}: {result['import_cpu_s']:.3f} s", file=sys.stderr, flush=True)
        if corpus_files:
            results, rss, exact = import_in_child(corpus_files, work / "import-corpus")
            for row, result in zip(rows[len(hostile_files) :], results, strict=True):
                row.update(result, import_rss_mb=rss, rss_exact=exact)
    return {"started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "work": str(work), "rows": rows}


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_report(report: dict) -> None:
    rows = report["rows"]
    hostile = [row for row in rows if row["kind"] == "hostile"]
    corpus = sorted((row for row in rows if row["kind"] == "corpus"), key=_cost, reverse=True)
    print(f"{'case':<46} {'size MB':>8} {'parse s':>8} {'parse MB':>9} {'import s':>9} {'RSS MB':>7}  result")
    for row in hostile + corpus[:10]:
        print(
            f"{row['case'][:46]:<46} {row['bytes'] / 1e6:>8.2f} {row['parse_cpu_s']:>8.3f} "
            f"{row['parse_peak_mb']:>9.1f} {_fmt(row.get('import_cpu_s'), '9.3f'):>9} "
            f"{_fmt(row.get('import_rss_mb'), '7.0f'):>7}  {row.get('import', '')}"
        )
    if corpus:
        print(f"(the 10 costliest of {len(corpus)} corpus messages shown; the corpus import ran in one child)")
    print()
    print("Worst figures")
    for label, key, target in (
        ("parse CPU", "parse_cpu_s", TARGET_CPU_S),
        ("parse peak (tracemalloc)", "parse_peak_mb", TARGET_MB),
        ("import CPU", "import_cpu_s", TARGET_CPU_S),
        ("import peak RSS", "import_rss_mb", TARGET_MB),
    ):
        found = [row for row in rows if row.get(key) is not None]
        if not found:
            continue
        worst = max(found, key=lambda row: row[key])
        verdict = "ok" if worst[key] <= target else "OVER TARGET"
        unit = "s" if key.endswith("_s") else "MB"
        print(f"  {label:<26} {worst[key]:>8.3f} {unit:<2} ({worst['case'][:50]})  target {target:g} {unit}: {verdict}")
    failed = [row for row in rows if row.get("import") not in (None, "new", "duplicate")]
    print(f"  messages measured          {len(rows)} ({len(hostile)} hostile, {len(corpus)} corpus)")
    print(f"  imports not stored         {len(failed)}" + "".join(f"\n    {r['case']}: {r['import']}" for r in failed))


def _cost(row: dict) -> float:
    return max(row["parse_cpu_s"], row.get("import_cpu_s") or 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-corpus", dest="corpus", action="store_false", help="hostile cases only")
    parser.add_argument("--no-import", dest="imports", action="store_false", help="parse only, no child imports")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child)
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    from bench.fetch import machine, print_machine

    print_machine(machine(OUT))
    report = run(args)
    print_report(report)
    path = args.json or OUT / f"hostile-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
