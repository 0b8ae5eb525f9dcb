"""NESTML -> NEST build service.

Compiles every ``models_nestml/*.nestml`` file into one NEST extension module
and caches it under the user cache directory, keyed by a hash of the sources,
the NEST and NESTML versions and the build options. An unchanged tree
rebuilds nothing.

The PyPI wheel of NEST ships a ``nest-config`` that prints the paths of the
machine it was built on, so we write a working one into the cache and hand
NESTML its prefix through ``codegen_opts={"nest_path": ...}``.

Three changes make the generated neurons about as cheap as NEST's built-ins
(issue 4, measured with callgrind's cache simulation and alternating wall-time
runs, tests/benchmarks/bench_models.py; see :data:`TEMPLATE_PATCHES`): the module is compiled with ``-DNDEBUG`` like NEST
itself; NESTML's neuron template is patched at build time so that a model
without ``onReceive`` blocks neither allocates nor fills a second "spike
received" ring buffer per port; and all spike and current inputs of a neuron
share one slot-major ring held in the neuron object
(``cpp/cortexzoo_input_ring.h``), as NEST's ``MultiChannelInputBuffer`` does,
instead of one heap-allocated ring buffer per port.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cortexzoo.errors import CortexzooError

MODULE_NAME = "cortexzoomodule"
SOURCE_DIR = Path(__file__).resolve().parent

# Bump when the way we build changes, so old cache entries are not reused.
BUILD_RECIPE_VERSION = "3"

# The wheel is built with the old C++ ABI; a module built without this flag
# does not load. -DNDEBUG as in NEST's own release build: without it every
# RingBuffer access in the generated code runs NEST's bounds asserts (about 25%
# of the instructions of a NESTML neuron's update()).
NEST_CFLAGS = "-DNDEBUG -std=c++20 -O3 -fopenmp -D_GLIBCXX_USE_CXX11_ABI=0"

# NESTML's point-neuron templates, relative to the installed pynestml package.
NESTML_TEMPLATE_DIR = Path("codegeneration") / "resources_nest" / "point_neuron"

# Build-time edits of NESTML's installed templates: (file, exact text, replacement, why).
# The template files themselves are not copied into this repository; each
# build copies them from the installed NESTML into its private work folder and
# applies these edits. Every text must occur exactly once, so a NESTML upgrade
# that changes the template fails loudly instead of building something else.
# NESTML fills two ring buffers per spike port: the weights and a "received"
# flag that only ``onReceive`` blocks read. For a model that adds its spikes in
# the update block, the flag buffer costs a second ring-buffer write per
# incoming spike (a cache miss each, about as many as all of NEST's
# iaf_psc_exp::handle) and a read per step; the edits skip it when the model
# has no onReceive block, and compute the delivery slot once per event. Such
# a model does not even allocate the flag buffers: left in place, they sat on
# the heap between the input rings of successive neurons and kept the wall
# time at 1.15-1.2x NEST's, though callgrind counted equal instructions and
# misses (it models neither TLB nor prefetcher); without them 0.9-1.0x.
# The remaining edits swap NESTML's std::vector< nest::RingBuffer > (one ring
# per port, behind two pointers) for the shared ring of
# cpp/cortexzoo_input_ring.h: for 10,000 LIF neurons under Poisson input this
# cut the simulated L2 misses per incoming spike from 3.0 to 2.0 (NEST's
# iaf_psc_exp: 2.0) and those of update() by 28 %.
#
# The member/getter loop of NESTML's SpikeBufferGetter and
# ContinuousInputBufferGetter macros (identical in both).
_GETTER_LOOP = """{%- for data_type, variable_name, comment_string in _tuples %}

/**
 * {{ comment_string }}
**/
inline std::vector< {{data_type}} >& get_{{variable_name}}()
{
{%-     if is_in_struct %}
    return {{variable_name}};
{%-     else %}
    return B_.get_{{variable_name}}();
{%-     endif %}
}
{%-     if is_in_struct %}
std::vector< {{data_type}} > {{variable_name}};
{%-     endif %}
{%- endfor %}
"""
# Which C++ type each buffer gets; the "received" flags (onReceive) keep NESTML's.
_CZ_TYPE = """{%- set cz_type = {
    "spike_inputs_": "cortexzoo::RingChannels",
    "continuous_inputs_": "cortexzoo::RingChannelsView",
    "spike_inputs_grid_sum_": "cortexzoo::InlineArray< NUM_SPIKE_RECEPTORS >",
    "continuous_inputs_grid_sum_": "cortexzoo::InlineArray< NUM_CONTINUOUS_INPUT_PORTS >",
}.get(variable_name, "std::vector< " ~ data_type ~ " >") %}
"""

TEMPLATE_PATCHES = (
    (
        "common/NeuronClass.jinja2",
        "      get_spike_input_received_grid_sum_()[i] = get_spike_input_received_()[i].get_value(lag);\n",
        "{%- if neuron.get_on_receive_blocks() %}\n"
        "      get_spike_input_received_grid_sum_()[i] = get_spike_input_received_()[i].get_value(lag);\n"
        "{%- endif %}\n",
        "read the 'received' flags only for models with onReceive blocks",
    ),
    (
        "common/NeuronClass.jinja2",
        """  B_.spike_inputs_[ nestml_buffer_idx - MIN_SPIKE_RECEPTOR ].add_value(
    e.get_rel_delivery_steps( nest::kernel().simulation_manager.get_slice_origin() ),
    weight * e.get_multiplicity() );
  B_.spike_input_received_[ nestml_buffer_idx - MIN_SPIKE_RECEPTOR ].add_value(
    e.get_rel_delivery_steps( nest::kernel().simulation_manager.get_slice_origin() ),
    1. );
""",
        """  // cortexzoo template patch: one delivery-slot computation per event, and the
  // "received" flag only for models whose onReceive blocks read it.
  const long rel_steps = e.get_rel_delivery_steps( nest::kernel().simulation_manager.get_slice_origin() );
  B_.spike_inputs_[ nestml_buffer_idx - MIN_SPIKE_RECEPTOR ].add_value( rel_steps, weight * e.get_multiplicity() );
{%- if neuron.get_on_receive_blocks() %}
  B_.spike_input_received_[ nestml_buffer_idx - MIN_SPIKE_RECEPTOR ].add_value( rel_steps, 1. );
{%- endif %}
""",
        "write the 'received' flag only for models with onReceive blocks",
    ),
    (
        "common/NeuronClass.jinja2",
        """  B_.spike_input_received_.resize(NUM_SPIKE_RECEPTORS);
  B_.spike_input_received_grid_sum_.resize(NUM_SPIKE_RECEPTORS);
""",
        """{%- if neuron.get_on_receive_blocks() %}
  B_.spike_input_received_.resize(NUM_SPIKE_RECEPTORS);
  B_.spike_input_received_grid_sum_.resize(NUM_SPIKE_RECEPTORS);
{%- endif %}
""",
        "allocate the 'received' flag buffers only for models with onReceive blocks",
    ),
    *(
        (
            "common/NeuronClass.jinja2",
            head + """
  logger_(n)
{%- if neuron.get_spike_input_ports()|length > 0 %}
  , spike_inputs_( std::vector< nest::RingBuffer >( NUM_SPIKE_RECEPTORS ) )
  , spike_inputs_grid_sum_( std::vector< double >( NUM_SPIKE_RECEPTORS ) )
  , spike_input_received_( std::vector< nest::RingBuffer >( NUM_SPIKE_RECEPTORS ) )
  , spike_input_received_grid_sum_( std::vector< double >( NUM_SPIKE_RECEPTORS ) )
{%- endif %}
{%- if has_continuous_input %}
  , continuous_inputs_( std::vector< nest::RingBuffer >( NUM_CONTINUOUS_INPUT_PORTS ) )
  , continuous_inputs_grid_sum_( std::vector< double >( NUM_CONTINUOUS_INPUT_PORTS ) )
{%- endif %}
""",
            head + """
  logger_(n)
{%- if neuron.get_spike_input_ports()|length > 0 %}
  , spike_inputs_( NUM_SPIKE_RECEPTORS )
  , spike_inputs_grid_sum_( NUM_SPIKE_RECEPTORS )
{%-   if neuron.get_on_receive_blocks() %}
  , spike_input_received_( std::vector< nest::RingBuffer >( NUM_SPIKE_RECEPTORS ) )
  , spike_input_received_grid_sum_( std::vector< double >( NUM_SPIKE_RECEPTORS ) )
{%-   endif %}
{%- endif %}
{%- if has_continuous_input %}
  , continuous_inputs_( &spike_inputs_, NUM_SPIKE_RECEPTORS, NUM_CONTINUOUS_INPUT_PORTS )
  , continuous_inputs_grid_sum_( NUM_CONTINUOUS_INPUT_PORTS )
{%- endif %}
""",
            "spike and continuous inputs share one slot-major ring (cortexzoo_input_ring.h); no "
            "'received' flag buffers for models without onReceive blocks",
        )
        for head in ("{{ neuronName }}::Buffers_::Buffers_({{ neuronName }} &n):",
                     "{{ neuronName }}::Buffers_::Buffers_(const Buffers_ &, {{ neuronName }} &n):")
    ),
    *(
        (
            f"directives_cpp/{macro}.jinja2",
            _GETTER_LOOP,
            _GETTER_LOOP.replace("std::vector< {{data_type}} >", "{{ cz_type }}").replace(
                "{%- for data_type, variable_name, comment_string in _tuples %}\n",
                "{%- for data_type, variable_name, comment_string in _tuples %}\n" + _CZ_TYPE,
            ),
            "buffer members of the shared-ring and in-object types",
        )
        for macro in ("SpikeBufferGetter", "ContinuousInputBufferGetter")
    ),
    (
        "common/NeuronHeader.jinja2",
        '#include "ring_buffer.h"\n',
        '#include "ring_buffer.h"\n{% raw %}\n' + (SOURCE_DIR / "cpp" / "cortexzoo_input_ring.h").read_text()
        + "{% endraw %}\n",
        "define the cortexzoo input buffer types",
    ),
)

# Headers the generated code and NEST's own headers include, with the Debian
# package that provides each.
REQUIRED_HEADERS = {
    "gsl/gsl_errno.h": "libgsl-dev",
    "boost/version.hpp": "libboost-dev",
    "ltdl.h": "libltdl-dev",
}


@dataclass(frozen=True)
class BuildResult:
    """Where the module is and how it was obtained.

    Attributes
    ----------
    module_path : pathlib.Path
        The ``.so`` file to pass to ``nest.Install``.
    cache_hit : bool
        True when nothing was compiled.
    seconds : float
        Wall time of :func:`build_module`.
    key : str
        The cache key (hash of sources, versions and build options).
    models : tuple of str
        NESTML model names compiled into the module.
    """

    module_path: Path
    cache_hit: bool
    seconds: float
    key: str
    models: tuple


def cache_root() -> Path:
    """Return the cortexzoo cache directory.

    ``$CORTEXZOO_CACHE_DIR`` wins, then ``$XDG_CACHE_HOME/cortexzoo``, then
    ``~/.cache/cortexzoo``.

    Returns
    -------
    pathlib.Path
    """
    if os.environ.get("CORTEXZOO_CACHE_DIR"):
        return Path(os.environ["CORTEXZOO_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cortexzoo"


def nestml_sources(source_dir: Path | None = None) -> list[Path]:
    """List the NESTML files that make up the module, sorted by name.

    Parameters
    ----------
    source_dir : pathlib.Path, optional
        Folder to scan; defaults to ``models_nestml/``.

    Returns
    -------
    list of pathlib.Path
    """
    source_dir = Path(source_dir or SOURCE_DIR)
    files = sorted(source_dir.glob("*.nestml"))
    if not files:
        raise CortexzooError(
            f"No .nestml files found in {source_dir}.",
            "Put at least one NESTML model there, or pass the right folder.",
        )
    return files


def tool_versions() -> dict:
    """Versions that enter the cache key, read without importing NEST.

    Returns
    -------
    dict
        ``{"nest": ..., "nestml": ..., "python": ..., "recipe": ...}``.
    """
    return {
        "nest": importlib.metadata.version("nest-simulator"),
        "nestml": importlib.metadata.version("nestml"),
        "python": sys.version.split()[0],
        "recipe": BUILD_RECIPE_VERSION,
    }


def cache_key(sources: list[Path], codegen_opts: dict | None = None) -> str:
    """Hash the sources, tool versions and build options.

    Parameters
    ----------
    sources : list of pathlib.Path
        NESTML files, in a stable order.
    codegen_opts : dict, optional
        Extra NESTML code-generator options.

    Returns
    -------
    str
        A 16-character hex digest.
    """
    h = hashlib.sha256()
    for path in sources:
        h.update(path.name.encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    h.update(json.dumps(tool_versions(), sort_keys=True).encode())
    h.update(json.dumps(codegen_opts or {}, sort_keys=True).encode())
    h.update(NEST_CFLAGS.encode())
    h.update(json.dumps(TEMPLATE_PATCHES).encode())
    return h.hexdigest()[:16]


def model_build_key(source: Path, codegen_opts: dict | None = None) -> str:
    """Build key of one model's own code: its source, tool versions, flags and template patches.

    The module's cache key (:func:`cache_key`) covers all sources; a run's
    identity uses this per-model key, because another model's source does not
    change this model's generated code.

    Parameters
    ----------
    source : pathlib.Path
        The model's ``.nestml`` file.
    codegen_opts : dict, optional

    Returns
    -------
    str
    """
    return cache_key([Path(source)], codegen_opts)


def nest_package_dir() -> Path:
    """Locate the installed ``nest`` package without importing it.

    Returns
    -------
    pathlib.Path
    """
    for base in (sysconfig.get_paths()["platlib"], sysconfig.get_paths()["purelib"]):
        candidate = Path(base) / "nest"
        if (candidate / "include" / "nest").is_dir():
            return candidate
    raise CortexzooError(
        "The NEST headers (site-packages/nest/include/nest) were not found in this Python environment.",
        "Install the pinned NEST wheel: `pip install nest-simulator==3.10.0` (or run `make install`).",
    )


def write_nest_config(prefix: Path) -> Path:
    """Write a working ``nest-config`` for the PyPI wheel under ``prefix/bin``.

    Parameters
    ----------
    prefix : pathlib.Path
        Folder that becomes NESTML's ``nest_path``.

    Returns
    -------
    pathlib.Path
        The script's path.
    """
    nest_dir = nest_package_dir()
    include = nest_dir / "include" / "nest"
    version = tool_versions()["nest"]
    script = f"""#!/bin/sh
# Written by cortexzoo: the wheel's own nest-config prints its build machine's paths.
for arg in "$@"; do
  case "$arg" in
    --prefix|--exec-prefix) echo "{nest_dir}" ;;
    --includes) echo "-I{include}" ;;
    --cflags) echo "{NEST_CFLAGS}" ;;
    --libs) echo "" ;;
    --compiler) echo "${{CXX:-c++}}" ;;
    --compiler-name) echo "GNU" ;;
    --version) echo "{version}" ;;
    --static-libraries) echo "OFF" ;;
    --python-executable) echo "{sys.executable}" ;;
    --libdir) echo "lib" ;;
    --datadir) echo "share/nest" ;;
    --docdir) echo "share/doc/nest" ;;
    *) echo "" ;;
  esac
done
"""
    path = prefix / "bin" / "nest-config"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != script:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(script)
        tmp.chmod(0o755)
        tmp.replace(path)
    return path


def check_headers(headers: dict | None = None) -> None:
    """Fail early, with the apt command, when a system header is missing.

    Each header is run through the C++ preprocessor, so the compiler's real
    search path decides.

    Parameters
    ----------
    headers : dict, optional
        ``{header: debian_package}``; defaults to :data:`REQUIRED_HEADERS`.

    Raises
    ------
    CortexzooError
        Naming the missing headers and the packages to install.
    """
    headers = REQUIRED_HEADERS if headers is None else headers
    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None:
        raise CortexzooError(
            f"No C++ compiler ('{cxx}') found; NESTML models are compiled to C++.",
            "Install one: `apt-get install g++` (or set $CXX).",
        )
    missing = {}
    for header, package in headers.items():
        proc = subprocess.run(
            [cxx, "-x", "c++", "-E", "-o", os.devnull, "-"],
            input=f"#include <{header}>\n",
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            missing[header] = package
    if missing:
        packages = " ".join(sorted(set(missing.values())))
        raise CortexzooError(
            "Missing system header(s) needed to compile NESTML models: "
            + ", ".join(f"{h} (Debian package {p})" for h, p in missing.items())
            + ".",
            f"Install them: `sudo apt-get install -y {packages}` (or run `make install` as root).",
        )


def nestml_template_dir() -> Path:
    """Locate NESTML's installed NEST point-neuron templates without importing NESTML.

    Returns
    -------
    pathlib.Path
    """
    import importlib.util

    spec = importlib.util.find_spec("pynestml")
    if spec is None or not spec.submodule_search_locations:
        raise CortexzooError(
            "NESTML (pynestml) is not installed in this Python environment.",
            "Install the pinned version: `pip install nestml==9.0.0` (or run `make install`).",
        )
    return Path(list(spec.submodule_search_locations)[0]) / NESTML_TEMPLATE_DIR


def patched_templates(dest: Path, patches=TEMPLATE_PATCHES) -> dict:
    """Copy NESTML's point-neuron templates to ``dest`` and apply ``patches``.

    Parameters
    ----------
    dest : pathlib.Path
        New folder for the patched copy (inside the private build folder).
    patches : sequence of tuple
        ``(file, old, new, why)`` entries; see :data:`TEMPLATE_PATCHES`.

    Returns
    -------
    dict
        The ``templates`` code-generator option that points NESTML at ``dest``.

    Raises
    ------
    CortexzooError
        When a patch's text is not found exactly once (another NESTML version).
    """
    shutil.copytree(nestml_template_dir(), dest)
    for rel, old, new, why in patches:
        path = dest / rel
        text = path.read_text()
        if text.count(old) != 1:
            raise CortexzooError(
                f"The NESTML template {rel} does not match cortexzoo's build-time patch ({why}); "
                f"installed NESTML is {tool_versions()['nestml']}.",
                "Install the pinned NESTML (`pip install nestml==9.0.0`), or update TEMPLATE_PATCHES "
                "in models_nestml/build.py for the new template.",
            )
        path.write_text(text.replace(old, new))
    # NESTML's own defaults, with the root moved to the patched copy.
    return {
        "path": str(dest),
        "model_templates": {
            "neuron": ["@NEURON_NAME@.cpp.jinja2", "@NEURON_NAME@.h.jinja2"],
            "synapse": ["@SYNAPSE_NAME@.h.jinja2"],
        },
        "module_templates": ["setup"],
    }


def _nestml_errors(sources: list[Path]) -> list[str]:
    """Collect NESTML's logged errors as 'file:line:col: message' strings."""
    from pynestml.utils.logger import Logger, LoggingLevel

    originals = {p.name: str(p) for p in sources}
    errors = []
    current = "<nestml>"
    for file_name, _node, level, _code, location, message in Logger.get_messages():
        # Parser errors carry no file name; the last "Start processing" line tells it.
        if message.startswith('Start processing "'):
            current = Path(message.split('"')[1]).name
        if level != LoggingLevel.ERROR:
            continue
        name = file_name or current
        where = originals.get(name, name)
        if location is not None:
            where += f":{location.start_line}:{location.start_column}"
        errors.append(f"{where}: {message}")
    return errors


def _compile(sources: list[Path], workdir: Path, codegen_opts: dict, verbose: bool) -> Path:
    """Run NESTML code generation and the C++ build in ``workdir``."""
    os.environ.setdefault("PYNEST_QUIET", "1")
    from pynestml.frontend.pynestml_frontend import generate_nest_target

    srcdir = workdir / "src"
    srcdir.mkdir()
    for path in sources:
        shutil.copy2(path, srcdir / path.name)
    prefix = cache_root() / "nest_prefix"
    write_nest_config(prefix)
    install = workdir / "install"
    opts = {"nest_path": str(prefix), **codegen_opts}
    if "templates" not in opts:  # a caller's own templates are used as they are
        opts["templates"] = patched_templates(workdir / "templates")
    log = workdir / "build.log"
    try:
        # NESTML and make write a lot; keep it in a log and show it on failure.
        with open(log, "w") as fh:
            out_fd, err_fd = os.dup(1), os.dup(2)
            sys.stdout.flush()
            sys.stderr.flush()
            if not verbose:
                os.dup2(fh.fileno(), 1)
                os.dup2(fh.fileno(), 2)
            try:
                generate_nest_target(
                    str(srcdir),
                    target_path=str(workdir / "target"),
                    install_path=str(install),
                    module_name=MODULE_NAME,
                    logging_level="ERROR",
                    codegen_opts=opts,
                )
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(out_fd, 1)
                os.dup2(err_fd, 2)
                os.close(out_fd)
                os.close(err_fd)
    except Exception as exc:  # NESTML raises bare exceptions for C++ build failures
        errors = _nestml_errors(sources)
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:]) if log.exists() else ""
        detail = "\n".join(errors) if errors else f"{type(exc).__name__}: {exc}\n{tail}"
        raise CortexzooError(
            f"Building the NESTML module failed:\n{detail}",
            f"Fix the model source named above; the full build log is {log}.",
        ) from None
    errors = _nestml_errors(sources)
    module = install / f"{MODULE_NAME}.so"
    if errors or not module.exists():
        detail = "\n".join(errors) or "NESTML produced no module (see the build log)."
        raise CortexzooError(
            f"NESTML rejected the model sources:\n{detail}",
            "Correct the .nestml file at the line given (NESTML 9 syntax: a unit may only "
            f"follow a number, e.g. `1 ms`); the full log is {log}.",
        )
    return module


def build_module(
    source_dir: Path | None = None,
    force: bool = False,
    codegen_opts: dict | None = None,
    verbose: bool = False,
    progress=None,
) -> BuildResult:
    """Compile the NESTML models into one NEST module, or reuse the cached one.

    Parameters
    ----------
    source_dir : pathlib.Path, optional
        Folder with the ``.nestml`` files; defaults to ``models_nestml/``.
    force : bool
        Rebuild even when the cache holds a module for this key.
    codegen_opts : dict, optional
        Extra NESTML code-generator options (enter the cache key).
    verbose : bool
        Let NESTML and the compiler print to the terminal.
    progress : callable, optional
        Called with one-line status messages.

    Returns
    -------
    BuildResult

    Raises
    ------
    CortexzooError
        On NESTML errors (with file and line), missing headers or compiler failures.
    """
    t0 = time.perf_counter()
    say = progress or (lambda msg: None)
    sources = nestml_sources(source_dir)
    codegen_opts = dict(codegen_opts or {})
    key = cache_key(sources, codegen_opts)
    entry = cache_root() / "modules" / key
    module = entry / f"{MODULE_NAME}.so"
    manifest = entry / "manifest.json"
    if module.exists() and manifest.exists() and not force:
        models = tuple(json.loads(manifest.read_text())["models"])
        return BuildResult(module, True, time.perf_counter() - t0, key, models)

    check_headers()
    entry.parent.mkdir(parents=True, exist_ok=True)
    # Parallel jobs (e.g. Snakemake) may all find the cache empty: one builds, the others wait.
    with open(entry.parent / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if module.exists() and manifest.exists() and not force:
            models = tuple(json.loads(manifest.read_text())["models"])
            return BuildResult(module, True, time.perf_counter() - t0, key, models)
        return _build_locked(sources, entry, key, codegen_opts, verbose, say, t0)


def _build_locked(sources, entry, key, codegen_opts, verbose, say, t0) -> BuildResult:
    """Compile into a private folder and move the finished entry into the cache."""
    module = entry / f"{MODULE_NAME}.so"
    for stale in entry.parent.glob("build-*"):
        # Failed builds keep their folder for the log; a day later it is only clutter.
        if time.time() - stale.stat().st_mtime > 86400:
            shutil.rmtree(stale, ignore_errors=True)
    say(f"compiling {len(sources)} NESTML model file(s) into {MODULE_NAME} (cache key {key}) ...")
    workdir = Path(tempfile.mkdtemp(prefix=f"build-{key}-", dir=entry.parent))
    built = _compile(sources, workdir, codegen_opts, verbose)
    models = tuple(sorted(p.stem for p in (workdir / "target").glob("*.h") if p.stem != MODULE_NAME))
    staging = workdir / "entry"
    staging.mkdir()
    shutil.copy2(built, staging / module.name)
    (staging / "manifest.json").write_text(
        json.dumps(
            {
                "key": key,
                "models": list(models),
                "sources": [p.name for p in sources],
                "versions": tool_versions(),
                "codegen_opts": codegen_opts,
                "built": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
            indent=2,
        )
    )
    # Swap in the finished entry in one rename so a killed build never looks complete.
    if entry.exists():
        shutil.rmtree(entry)
    staging.rename(entry)
    shutil.rmtree(workdir, ignore_errors=True)
    return BuildResult(module, False, time.perf_counter() - t0, key, models)
