"""The EXI C extension under AddressSanitizer/UBSan and under a coverage-guided fuzzer.

Both build their own instrumented copy of `_exi` from the committed sources, so these
tests also prove the C code compiles warning-free (-Wall -Wextra -Werror) with gcc and
clang.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from charger.protocols import exi
from fuzz.exi_seeds import seeds

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "charger" / "protocols" / "exi" / "_exi.c"
FUZZ_SECONDS = int(os.environ.get("EXI_FUZZ_SECONDS", "60"))
SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: libFuzzer")


def build(compiler: str, flags: list[str], out: Path) -> Path:
    target = out / ("_exi" + sysconfig.get_config_var("EXT_SUFFIX"))
    command = [
        compiler,
        "-shared",
        "-fPIC",
        "-std=c11",
        "-O1",
        "-g",
        "-fno-omit-frame-pointer",
        "-Wall",
        "-Wextra",
        "-Werror",
        *flags,
        f"-I{sysconfig.get_paths()['include']}",
        str(SOURCE),
        "-o",
        str(target),
    ]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return target


def runtime(compiler: str, library: str) -> str:
    found = subprocess.run(
        [compiler, f"-print-file-name={library}"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert Path(found).is_file(), f"{compiler} has no {library}"
    return found


@pytest.mark.integration
def test_decoder_and_encoder_are_clean_under_asan_and_ubsan(tmp_path: Path) -> None:
    flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    extension = build("gcc", flags, tmp_path)
    env = dict(
        os.environ,
        LD_PRELOAD=runtime("gcc", "libasan.so"),
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
    )
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.exi_stress", str(extension)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert not any(report in result.stderr for report in SANITIZER_REPORTS), result.stderr[-4000:]
    assert result.returncode == 0, result.stderr[-4000:]
    checked = int(result.stdout.split("checked ")[1].split()[0])
    assert checked > 100_000


# Run under the sanitized build: the C encoder past MAX_STREAM only counts (aligned and
# unaligned binary, strings, events), the decoder refuses longer streams before reading.
ACROSS_THE_LIMIT = """
import sys
from tests.support.exi_stress import load_extension

load_extension(sys.argv[1])
from charger.protocols import exi
from charger.protocols.exi import _cbackend
from fuzz.exi_seeds import across_the_limit, seeds

backend = _cbackend.CBackend()
checked = 0
for schema, element, fragment, message in across_the_limit():
    try:
        backend.encode(schema, message, element, fragment)
    except exi.ExiError as exc:
        checked += "more than the EXI stream limit" in str(exc)
oversized = [data for name, data in seeds().items() if name.startswith("above-limit")]
for data in oversized:
    for end in (exi.MAX_STREAM, exi.MAX_STREAM + 1, len(data)):
        try:
            backend.decode(exi.Schema.ISO2, data[1 : 1 + end], False)
        except exi.ExiError:
            pass
        checked += 1
print(f"checked {checked} streams")
"""


@pytest.mark.integration
def test_the_stream_limit_is_clean_under_asan_and_ubsan(tmp_path: Path) -> None:
    flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    extension = build("gcc", flags, tmp_path)
    env = dict(
        os.environ,
        LD_PRELOAD=runtime("gcc", "libasan.so"),
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
    )
    result = subprocess.run(
        [sys.executable, "-c", ACROSS_THE_LIMIT, str(extension)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert not any(report in result.stderr for report in SANITIZER_REPORTS), result.stderr[-4000:]
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.split() == ["checked", "20", "streams"]


def seed_corpus(directory: Path) -> int:
    """Writes fuzz/exi_seeds.py's seeds, one file each; tests/unit/exi/test_fuzz_corpus.py
    checks that the target decodes them as they were meant."""
    corpus = seeds()
    for name, data in corpus.items():
        (directory / name).write_bytes(data)
    return len(corpus)


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("clang") is None, reason="clang is installed by bootstrap --test")
def test_coverage_guided_fuzzing_finds_no_crash(tmp_path: Path) -> None:
    import atheris  # type: ignore[import-not-found]

    extension = build("clang", ["-fsanitize=address,fuzzer-no-link"], tmp_path)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    assert seed_corpus(corpus) > 450
    # the selector byte, a stream at the codec's size limit and 8 KiB of mutations above it
    max_len = 1 + exi.MAX_STREAM + 8192
    env = dict(
        os.environ,
        LD_PRELOAD=str(Path(atheris.path()) / "asan_with_fuzzer.so"),
        ASAN_OPTIONS="detect_leaks=0",
    )
    result = subprocess.run(
        [
            sys.executable,
            "fuzz/exi_fuzz.py",
            str(extension),
            str(corpus),
            f"-max_total_time={FUZZ_SECONDS}",
            f"-max_len={max_len}",
            f"-artifact_prefix={tmp_path}/",
            "-rss_limit_mb=4096",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 600,
    )
    crashers = [p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "oom-"))]
    assert crashers == [], result.stderr[-4000:]
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Done" in result.stderr and "cov:" in result.stderr
