"""Let the single-page builder (used for the PDF) render every node the HTML one does.

Sphinx looks up a custom node's visitors by builder name first, then by format:
once an extension (sphinx-exercise) registers visitors for ``singlehtml``, the
nodes that others registered for ``html`` only (sphinx-jupyterbook-latex's
HiddenCellNode, say) are unknown to it and the build fails (Sphinx issue 9160).
This copies the ``html`` visitors to ``singlehtml`` where it has none of its own.
"""


def _inherit_html_visitors(app):
    handlers = app.registry.translation_handlers
    if "singlehtml" in handlers:
        handlers["singlehtml"] = {**handlers.get("html", {}), **handlers["singlehtml"]}


def setup(app):
    app.connect("builder-inited", _inherit_html_visitors)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
