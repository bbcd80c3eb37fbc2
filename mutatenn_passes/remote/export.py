"""Export a built artifact in the form a remote server can load.

A library for this machine's architecture is linked here (``.so``). A cross-compiled one (the
profile's target, or its host, names an ``mtriple`` of another architecture) cannot be linked
without a cross linker, so it is exported as a ``.tar`` of object files instead; the server's
``load_module`` links it with the device's own compiler (the device then needs ``g++``).
"""

from __future__ import annotations

from pathlib import Path


def _arch(triple: str) -> str:
    return triple.split("-", 1)[0].lower()


def needs_remote_link(profile) -> bool:
    """Whether ``profile``'s code is for another architecture than this machine's."""
    triples = [t.get("mtriple") for t in (profile.target, profile.target.get("host") or {})
               if isinstance(t, dict)]
    triples = [t for t in triples if t]
    if not triples:
        return False
    try:
        from tvm.target import codegen

        system = codegen.llvm_get_system_triple()
    except Exception:  # no LLVM: cannot tell, so let the device link
        return True
    aliases = {"amd64": "x86_64", "arm64": "aarch64"}
    here = aliases.get(_arch(system), _arch(system))
    return any(aliases.get(_arch(t), _arch(t)) != here for t in triples)


def library_suffix(profile) -> str:
    """``".tar"`` for a cross-compiled profile, ``".so"`` otherwise."""
    return ".tar" if needs_remote_link(profile) else ".so"


def export_for_remote(artifact, folder, stem: str = "model") -> Path:
    """``artifact.export`` to ``folder/stem.so`` (or ``.tar`` when cross-compiled)."""
    return artifact.export(Path(folder) / f"{stem}{library_suffix(artifact.profile)}")
