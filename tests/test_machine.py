"""The machine line every benchmark JSON and pipeline report carries."""
import os
import platform

from edgeprune import machine


def test_cpu_model_reads_the_model_name(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\n"
                    "model name\t: AMD EPYC 7B13\nflags\t\t: fpu\n")
    assert machine.cpu_model(info) == "AMD EPYC 7B13"


def test_cpu_model_falls_back_when_cpuinfo_is_missing_or_silent(tmp_path):
    fallback = platform.processor() or "unknown CPU"
    assert machine.cpu_model(tmp_path / "absent") == fallback
    silent = tmp_path / "cpuinfo"
    silent.write_text("processor\t: 0\nmodel name\t:\n")
    assert machine.cpu_model(silent) == fallback


def test_describe_names_architecture_cpu_and_count():
    arch, cpu, count = machine.describe().split(", ")
    assert arch == platform.machine()
    assert cpu and count == f"{os.cpu_count()} cpus"
