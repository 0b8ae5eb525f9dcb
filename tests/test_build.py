"""The NESTML build service: cache, clear errors, header check, catalogue look-ups."""

import os
import shutil
import subprocess
import sys

import pytest

from cortexzoo.errors import CortexzooError
from cortexzoo.models import build_module, get_model
from cortexzoo.models.build import SOURCE_DIR, check_headers

CLI = [sys.executable, "-m", "cortexzoo.experiments.cli"]


def run_cli(*args, **kwargs):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, **kwargs)


def test_warm_build_is_a_cache_hit_that_compiles_nothing(nestml_module):
    """With nothing changed, `cortexzoo build` reports a cache hit and leaves the cached module untouched.

    Fails if the cache key is unstable between processes (e.g. it hashes a path,
    a time or a dict in arbitrary order), so every build compiles again and
    rewrites the module; or if a hit is reported but the entry is rebuilt or
    replaced anyway. Its wall time is measured in tests/benchmarks/bench_build.py.
    """
    entry = nestml_module.module_path.parent
    before = {p.name: p.stat().st_mtime_ns for p in entry.iterdir()}
    proc = run_cli("build")
    assert proc.returncode == 0, proc.stderr
    assert "cache hit" in proc.stdout
    assert str(nestml_module.module_path) in proc.stdout
    assert "compiling" not in proc.stderr
    assert {p.name: p.stat().st_mtime_ns for p in entry.iterdir()} == before


def test_module_contains_every_source(nestml_module):
    names = {p.stem for p in SOURCE_DIR.glob("*.nestml")}
    assert names <= set(nestml_module.models)


def test_ready_kernel_survives_reset(nest_kernel):
    """The module is re-installed after each reset, so a second kernel still knows the models."""
    from cortexzoo.models import ready_kernel

    nest = ready_kernel(threads=1)
    nest.Create(get_model("iaf_psc_exp_nestml").nest_model)
    nest = ready_kernel(threads=2, seed=3)
    assert nest.local_num_threads == 2
    nest.Create(get_model("iaf_psc_exp_nestml").nest_model, 3)


def _broken_copy(tmp_path, old, new):
    src = tmp_path / "models"
    src.mkdir()
    text = (SOURCE_DIR / "iaf_psc_exp_nestml.nestml").read_text()
    assert old in text
    (src / "iaf_psc_exp_nestml.nestml").write_text(text.replace(old, new, 1))
    lineno = text[: text.index(old)].count("\n") + 1
    return src, lineno


def test_syntax_error_names_file_line_and_message(tmp_path):
    src, lineno = _broken_copy(tmp_path, "V_m mV = E_L ", "V_m mV = = E_L ")
    proc = run_cli("build", "--source-dir", str(src), env={**_env(tmp_path)})
    assert proc.returncode != 0
    assert f"iaf_psc_exp_nestml.nestml:{lineno}" in proc.stderr
    assert "parsing" in proc.stderr.lower()
    assert "Traceback" not in proc.stderr


def test_free_standing_unit_is_reported(tmp_path):
    src, lineno = _broken_copy(tmp_path, "exc_spikes * 1 pA * 1 s", "exc_spikes * pA * s")
    with pytest.raises(CortexzooError) as err:
        build_module(source_dir=src)
    assert f"iaf_psc_exp_nestml.nestml:{lineno}" in str(err.value)
    assert "free-standing physical units" in str(err.value)


def _env(tmp_path):
    return {**os.environ, "CORTEXZOO_CACHE_DIR": str(tmp_path / "cache")}


def test_header_check_passes_on_this_machine():
    check_headers()


def test_missing_header_is_named_with_its_package():
    with pytest.raises(CortexzooError) as err:
        check_headers({"cortexzoo_no_such_dir/no_such_header.h": "libnosuch-dev"})
    assert "no_such_header.h" in str(err.value)
    assert "apt-get install -y libnosuch-dev" in str(err.value)


def _compiler_hiding(tmp_path, header):
    """A C++ compiler wrapper for which ``header`` is missing: the real compiler, plus an include
    folder searched first whose copy of ``header`` stops the compilation with an error.

    Works unprivileged (no mount namespace) and is handed to the build through ``$CXX``,
    the compiler setting that the header check and the compile both honour.
    """
    shadow = tmp_path / "shadow_include"
    (shadow / header).parent.mkdir(parents=True)
    (shadow / header).write_text(f'#error "{header}: hidden by test_build (stands for a missing header)"\n')
    real = shutil.which(os.environ.get("CXX", "c++"))
    wrapper = tmp_path / "bin" / "c++"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{real}" -I"{shadow}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def test_hidden_gsl_headers_stop_the_build(tmp_path):
    """Without GSL's headers, `cortexzoo build` stops before compiling, naming the header and the apt fix.

    Fails if the header check is skipped or does not use the configured compiler
    (the build would then run into a compiler error deep in NESTML's output), if
    the message omits the header or the Debian package, if the command exits 0
    or with a traceback, or if the check blames headers that are present.
    """
    wrapper = _compiler_hiding(tmp_path, "gsl/gsl_errno.h")
    # An empty cache: no cached module can hide the missing header.
    proc = run_cli("build", "--force", env={**_env(tmp_path), "CXX": str(wrapper)}, timeout=600)
    assert proc.returncode != 0
    assert "gsl/gsl_errno.h" in proc.stderr and "apt-get install -y libgsl-dev" in proc.stderr
    assert "libboost-dev" not in proc.stderr  # the wrapper is a working compiler otherwise
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "cache").glob("modules/*/*.so"))


def test_unknown_model_lists_the_catalogue():
    with pytest.raises(CortexzooError) as err:
        get_model("hodgkin_huxley_9000")
    message = str(err.value)
    assert "hodgkin_huxley_9000" in message and "iaf_psc_exp_nestml" in message and "catalogue.toml" in message


def test_catalogue_entries_are_usable(nest_kernel):
    """Every catalogue model exists in NEST, takes its PD14 parameters and has resolvable ports."""
    from cortexzoo.models import load_catalogue

    for name, spec in load_catalogue().items():
        defaults = nest_kernel.GetDefaults(spec.nest_model)
        for role in ("tau_syn_exc", "tau_syn_inh", "membrane_potential", "bias_current"):
            assert spec.role(role) in defaults, f"{name}: role {role} -> {spec.role(role)} not a parameter"
        for cell_type in ("E", "I"):
            node = nest_kernel.Create(spec.nest_model, params=spec.params_for("L4" + cell_type, cell_type))
            assert node.get("model") == spec.nest_model
        types = defaults.get("receptor_types", {})
        assert spec.receptor("exc", types) >= 0 and spec.receptor("inh", types) >= 0


def test_template_patches_match_the_installed_nestml(tmp_path):
    """Every build-time template edit finds its text exactly once, and the edits are in the copy."""
    from cortexzoo.models.build import TEMPLATE_PATCHES, patched_templates

    opts = patched_templates(tmp_path / "templates")
    header = (tmp_path / "templates" / "common" / "NeuronHeader.jinja2").read_text()
    assert "class InputRing" in header and opts["path"] == str(tmp_path / "templates")
    for rel, _old, new, _why in TEMPLATE_PATCHES:
        assert new in (tmp_path / "templates" / rel).read_text()


def test_template_patch_mismatch_is_a_clear_error(tmp_path):
    """A NESTML whose templates changed fails loudly, naming the template and the fix."""
    from cortexzoo.models.build import patched_templates

    bogus = (("common/NeuronClass.jinja2", "text that is not in the template", "x", "a test patch"),)
    with pytest.raises(CortexzooError) as err:
        patched_templates(tmp_path / "templates", patches=bogus)
    assert "NeuronClass.jinja2" in str(err.value) and "nestml==9.0.0" in str(err.value)
