"""Cold start of each Lambda handler from the `sam build` artifact, under python3.12.

Every measurement is a fresh python3.12 process whose `sys.path` is Lambda's: the function's build
folder (`/var/task`), then its layer's `python/` folder (`/opt/python`), then the standard library;
nothing from the project's virtualenv. Two kinds of process, each run with the bytecode the build
ships (`make sam` compiles it) and with none (a copy of the build with every .pyc removed):

  paired   first imports only the third-party modules the handler's code imports ("deps": the
           list is derived from the import statements of the handler module and of every docsrag
           module it reaches at import, and printed), then the handler module ("+ own": what our
           code adds on top, in the same process, so free of the noise between processes);
  handler  imports the handler module alone: the import phase of a cold start.

Importing a handler builds what it builds at init: settings, Powertools Logger/Tracer/Metrics
(X-Ray patching included, as with Tracing: Active) and, for chat, the FastAPI app. The ratio
(deps + own) / deps is the target (<= 1.15x), judged on CPU time: imports are CPU-bound and CPU
time stays steady on a busy machine, where wall time does not; wall time is printed beside it.

Lambda's code folders are read-only, so nothing is cached between runs: the copies' folders are
made read-only and PYTHONDONTWRITEBYTECODE=1 (as root, which ignores file modes, the latter does
the work; the script checks that no .pyc appeared). Runs are interleaved (every round runs each
combination once, in a shuffled order) and the figures are medians. The environment is the
template's, with Qdrant at a URL and the keys as plain values: no network at import. On Lambda,
`*_SECRET` references add a Secrets Manager call (and the boto3 import) to each function's init;
that is not measured here.

    .venv/bin/python bench/cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / ".aws-sam" / "build"
FIRST_PARTY = ("docsrag", "chat", "ingest")
COMPILE = ["-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"]
TARGET_RATIO = 1.15


@dataclass(frozen=True)
class Function:
    name: str  # Chat / Ingest
    handler_module: str

    @property
    def label(self) -> str:
        return self.name.lower()


FUNCTIONS = (Function("Chat", "chat.app"), Function("Ingest", "ingest.app"))
VARIANTS = ("shipped", "none")  # bytecode
# "paired": the deps, then the handler, in one process (the handler's own cost on top of its
# deps, free of the noise between processes); "handler": the handler alone (the cold start).
KINDS = ("paired", "handler")

# Runs in python3.12 -I -S -B: argv = code dir, layer dir, then phases of module names separated
# by "--": each phase is timed on its own. The result line goes to the original stdout; whatever
# the handler prints goes to stderr.
PROBE = r"""
import importlib, json, os, sys, time
code, layer, *rest = sys.argv[1:]
out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
sys.path[:0] = [code, layer]
phases, current = [], []
for arg in rest:
    if arg == "--":
        phases.append(current)
        current = []
    else:
        current.append(arg)
phases.append(current)
timings = []
for names in phases:
    started, cpu_started = time.perf_counter(), time.process_time()
    for name in names:
        importlib.import_module(name)
    timings.append(
        {"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu_started}
    )
third_party = sorted(
    name for name, module in list(sys.modules.items())
    if "." not in name and (getattr(module, "__file__", None) or "").startswith(layer)
)
out.write(json.dumps({"phases": timings, "third_party": third_party}) + "\n")
"""


# --- python3.12 and the artifact --------------------------------------------------------------


def find_python312() -> str | None:
    """`python3.12` on PATH, else the newest pyenv 3.12 (a pyenv shim may not be a 3.12)."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which("python3.12")]
    candidates += [str(p) for p in sorted(pyenv_root.glob("versions/3.12.*/bin/python3.12"))[::-1]]
    for candidate in candidates:
        if candidate is None:
            continue
        check = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.stdout.strip() == "True":
            return candidate
    return None


def _walk(src: Path) -> Iterator[Path]:
    for root, _dirs, files in os.walk(src):
        for name in files:
            yield Path(root, name)


def copy_build(src: Path, dest: Path, *, keep_bytecode: bool) -> None:
    """Hard-link copy of one build folder (a plain copy across file systems)."""

    def link(source: str, target: str) -> None:
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    ignore = None if keep_bytecode else shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(src, dest, symlinks=True, ignore=ignore, copy_function=link)


def set_folders_writable(root: Path, writable: bool) -> None:
    """Folders only: the files are hard links shared with the real build."""
    for folder, dirs, _files in os.walk(root):
        os.chmod(folder, 0o755 if writable else 0o555)
        for name in dirs:
            path = Path(folder, name)
            if not path.is_symlink():
                os.chmod(path, 0o755 if writable else 0o555)


def count_bytecode(root: Path) -> int:
    return sum(1 for path in _walk(root) if path.suffix == ".pyc")


# --- The third-party modules a handler's code imports --------------------------------------------


def _module_file(code: Path, name: str) -> Path | None:
    base = code.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_layer_module(layer: Path, name: str) -> bool:
    base = layer.joinpath(*name.split("."))
    if base.is_dir() or base.with_suffix(".py").is_file():
        return True
    return any(base.parent.glob(f"{base.name}.*.so"))


def _module_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements executed when the module is imported (not inside functions, not under
    `if TYPE_CHECKING:`)."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            test = ast.unparse(node.test)
            if test not in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}:
                pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody
            for handler in node.handlers:
                pending += handler.body
        elif isinstance(node, ast.ClassDef | ast.With):
            pending += node.body


def third_party_imports(code: Path, layer: Path, handler_module: str) -> list[str]:
    """Third-party modules named by import statements that run when the handler is imported, in
    the order they are first met (following first-party imports depth first)."""
    found: dict[str, None] = {}
    seen: set[str] = set()

    def visit(module: str) -> None:
        parts = module.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            name = ".".join(parts[:depth])
            if name in seen:
                continue
            seen.add(name)
            path = _module_file(code, name)
            if path is None:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in _module_level_imports(tree):
                if isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                else:
                    assert node.level == 0 and node.module, f"relative import in {path}"
                    targets = [node.module]
                    targets += [
                        f"{node.module}.{alias.name}"
                        for alias in node.names
                        if _module_file(code, f"{node.module}.{alias.name}")
                        or _is_layer_module(layer, f"{node.module}.{alias.name}")
                    ]
                for target in targets:
                    if target.split(".")[0] in FIRST_PARTY:
                        visit(target)
                    elif _is_layer_module(layer, target):
                        found.setdefault(target)

    visit(handler_module)
    return list(found)


# --- Measuring --------------------------------------------------------------------------------


def lambda_env(function: Function, code: Path) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_LAMBDA_FUNCTION_NAME": f"docsrag-{function.label}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "LAMBDA_TASK_ROOT": str(code),
        "AWS_REGION": "eu-central-1",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "docsrag",
        "POWERTOOLS_METRICS_NAMESPACE": "DocsRag",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
        "LOG_LEVEL": "INFO",
        "SITE_URL": "https://docs.example.org",
        "KEY_PREFIX": "site/",
        "DOCS_ROUTE_BASE_PATH": "docs",
        "QDRANT_URL": "https://qdrant.invalid:6333",
        "QDRANT_API_KEY": "bench-qdrant-key",
        "COLLECTION_NAME": "docs",
        "EMBEDDING_MODEL": "openai/text-embedding-3-small",
        "EMBEDDING_DIMENSIONS": "1536",
        "OPENROUTER_API_KEY": "sk-bench-not-used",
    }
    if function.name == "Chat":
        env |= {
            "CHAT_MODEL": "openai/gpt-oss-20b:free",
            "CORS_ORIGINS": "https://docs.example.org",
            "CORS_VIA_GATEWAY": "true",
            "THREADS_TABLE": "docsrag-threads",
            "VISITOR_TOKEN_KEYS": "k" * 48,
        }
    else:
        env["DOCS_BUCKET"] = "docsrag-docs-bench"
    return env


@dataclass(frozen=True)
class Probe:
    phases: list[dict[str, float]]  # per phase: "wall" and "cpu" seconds
    third_party: list[str]


def probe(
    python: str,
    function: Function,
    root: Path,
    *phases: list[str],
    importtime: bool = False,
) -> tuple[Probe, str]:
    code = root / f"{function.name}Function"
    layer = root / f"{function.name}DependenciesLayer" / "python"
    flags = ["-X", "importtime"] if importtime else []
    args = [name for phase in phases for name in ("--", *phase)][1:]
    result = subprocess.run(
        [python, "-I", "-S", "-B", *flags, "-c", PROBE, str(code), str(layer), *args],
        capture_output=True,
        text=True,
        env=lambda_env(function, code),
        cwd=code,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise SystemExit(f"{function.label}: probe failed ({result.returncode}):\n{result.stderr}")
    data = json.loads(result.stdout.splitlines()[-1])
    return Probe(phases=data["phases"], third_party=data["third_party"]), result.stderr


def own_import_costs(stderr: str, top: int = 6) -> list[tuple[str, float]]:
    """Self time of first-party modules from `-X importtime` output, largest first."""
    costs = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        self_us, _cumulative, name = (part.strip() for part in line[12:].split("|"))
        if self_us.isdigit() and name.split(".")[0] in FIRST_PARTY:
            costs.append((name, int(self_us) / 1e6))
    return sorted(costs, key=lambda item: -item[1])[:top]


def report(times: dict[tuple[str, str, str, str], list[float]]) -> None:
    """Medians, CPU time (steady on a busy machine; the verdict) and wall time side by side.

    deps: the third-party imports alone; own: what importing the handler adds after them (same
    process); ratio: median of (deps + own) / deps per run; handler: the handler imported alone
    in a fresh process (the cold start's import phase)."""
    median = {key: statistics.median(values) for key, values in times.items()}

    def ratio(name: str, variant: str, clock: str) -> float:
        deps = times[(name, variant, "deps", clock)]
        own = times[(name, variant, "own", clock)]
        return statistics.median((d + o) / d for d, o in zip(deps, own, strict=True))

    print()
    columns = f"{'deps':>8}{'+ own':>8}{'ratio':>8}{'handler':>9}"
    print(f"{'':<19}{'CPU time, s':^33}  {'wall time, s':^33}")
    print(f"{'function':<9}{'bytecode':<10}{columns}  {columns}")
    for f in FUNCTIONS:
        for variant in VARIANTS:
            cells = [
                f"{median[(f.name, variant, 'deps', clock)]:>8.2f}"
                f"{median[(f.name, variant, 'own', clock)]:>8.2f}"
                f"{ratio(f.name, variant, clock):>7.2f}x"
                f"{median[(f.name, variant, 'handler', clock)]:>9.2f}"
                for clock in ("cpu", "wall")
            ]
            verdict = "ok" if ratio(f.name, variant, "cpu") <= TARGET_RATIO else "over target"
            print(f"{f.label:<9}{variant:<10}{cells[0]}  {cells[1]}   {verdict}")
    print(f"(target: ratio <= {TARGET_RATIO}x on CPU time)")
    print()
    for f in FUNCTIONS:
        parts = []
        for clock in ("cpu", "wall"):
            without = median[(f.name, "none", "handler", clock)]
            shipped = median[(f.name, "shipped", "handler", clock)]
            parts.append(
                f"{clock} {without:.2f} s -> {shipped:.2f} s ({shipped / without - 1:+.0%})"
            )
        print(f"bytecode, {f.label} handler alone: " + "; ".join(parts))
    spread = {
        key[:3]: (min(v), max(v)) for key, v in times.items() if key[2:] == ("handler", "wall")
    }
    worst = max(spread.items(), key=lambda item: item[1][1] / item[1][0])
    low, high = worst[1]
    where = f"{worst[0][0].lower()}, bytecode {worst[0][1]}"
    print(f"noise: widest wall min..max of a handler alone: {low:.2f}..{high:.2f} s ({where})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured rounds (plus one warm-up)")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()

    python = find_python312()
    if python is None:
        print("cold start: skipped: python3.12 not found (on PATH or under pyenv)")
        return 0
    if not all((BUILD / f"{f.name}Function").is_dir() for f in FUNCTIONS):
        print(f"cold start: skipped: no sam build artifact at {BUILD}: run `make sam` first")
        return 0
    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    work = Path(tempfile.mkdtemp(prefix="bench-cold-start-", dir=BUILD.parent))
    roots = {"shipped": work / "shipped", "none": work / "none"}
    try:
        shipped_count = count_bytecode(BUILD)
        for variant, root in roots.items():
            for f in FUNCTIONS:
                for part in (f"{f.name}Function", f"{f.name}DependenciesLayer"):
                    copy_build(BUILD / part, root / part, keep_bytecode=variant == "shipped")
        compiled_here = shipped_count == 0
        if compiled_here:  # an artifact from a plain `sam build`: compile as `make sam` does
            subprocess.run([python, *COMPILE, str(roots["shipped"])], check=True)
        for root in roots.values():
            set_folders_writable(root, False)
        pyc_before = {variant: count_bytecode(root) for variant, root in roots.items()}

        deps = {
            f.name: third_party_imports(
                roots["none"] / f"{f.name}Function",
                roots["none"] / f"{f.name}DependenciesLayer" / "python",
                f.handler_module,
            )
            for f in FUNCTIONS
        }

        print(
            f"cold start from {BUILD.relative_to(REPO)} on python {version}: {args.runs} runs "
            "each (+1 warm-up), medians; read-only code, PYTHONDONTWRITEBYTECODE=1; load "
            f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        source = "compiled by this script" if compiled_here else "as shipped by `make sam`"
        print(f"bytecode: {pyc_before['shipped']} unchecked-hash .pyc files ({source}) vs none")
        for f in FUNCTIONS:
            print(f"{f.label} deps ({len(deps[f.name])}): {', '.join(deps[f.name])}")

        # Which third-party packages each import loads, and where our own import time goes.
        for f in FUNCTIONS:
            handler_probe, stderr = probe(
                python, f, roots["shipped"], [f.handler_module], importtime=True
            )
            deps_probe, _ = probe(python, f, roots["shipped"], deps[f.name])
            extra = sorted(set(handler_probe.third_party) - set(deps_probe.third_party))
            print(
                f"{f.label}: {len(handler_probe.third_party)} third-party top-level packages "
                f"loaded; only through the handler: {', '.join(extra) or 'none'}"
            )
            own = ", ".join(
                f"{name} {seconds * 1000:.0f} ms" for name, seconds in own_import_costs(stderr)
            )
            print(f"{f.label}: own modules, self time (importtime, bytecode): {own}")

        combos = [(f, v, k) for f in FUNCTIONS for v in VARIANTS for k in KINDS]
        times: dict[tuple[str, str, str, str], list[float]] = {}
        rng = random.Random(args.seed)
        for round_number in range(args.runs + 1):
            order = combos[:]
            rng.shuffle(order)
            for f, variant, kind in order:
                if kind == "paired":
                    result, _ = probe(python, f, roots[variant], deps[f.name], [f.handler_module])
                    names: tuple[str, ...] = ("deps", "own")
                else:
                    result, _ = probe(python, f, roots[variant], [f.handler_module])
                    names = ("handler",)
                if round_number == 0:
                    continue
                for name, phase in zip(names, result.phases, strict=True):
                    for clock in ("cpu", "wall"):
                        times.setdefault((f.name, variant, name, clock), []).append(phase[clock])

        leaked = {
            variant: count_bytecode(root) - pyc_before[variant] for variant, root in roots.items()
        }
        if any(leaked.values()):
            print(f"warning: runs wrote bytecode into the copies: {leaked}")
        report(times)
    finally:
        for root in roots.values():
            if root.exists():
                set_folders_writable(root, True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
