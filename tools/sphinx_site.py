"""A Sphinx extension for the course site (``sphinx: local_extensions`` in ``_config.yml``).

sphinx-thebe, which Jupyter Book always loads, registers its inline configuration script
(``const THEBE_JS_URL = ...``) twice, so every page raised "Identifier 'THEBE_JS_URL' has
already been declared" in the browser console. This extension drops a script that a page
would include a second time, identical in file and attributes.
"""
from __future__ import annotations


def _script_key(script) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    filename = getattr(script, "filename", str(script)) or ""  # None and "" both mean inline
    return filename, tuple(sorted(attributes.items()))


def drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    """``html-page-context`` handler: keep the first of identical ``script_files``."""
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    # Sphinx loads this before it executes any page: every kernel it starts inherits this.
    try:
        from tools.environment import single_threaded_blas
    except ModuleNotFoundError:  # loaded by Sphinx from tools/ itself (local_extensions)
        from environment import single_threaded_blas
    single_threaded_blas()
    app.connect("html-page-context", drop_repeated_scripts, priority=900)  # after the others
    return {"parallel_read_safe": True, "parallel_write_safe": True}
