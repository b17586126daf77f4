"""Drop script tags that a page would load twice.

With Jupyter Book 1.0.4, sphinx-thebe and sphinx-togglebutton register their
inline scripts twice per page (once with filename None, once with ''); the
second ``const THEBE_JS_URL`` is a SyntaxError in the browser's console.
Keeping the first copy of each script fixes it.
"""


def _drop_repeated_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        attributes = tuple(sorted(getattr(script, "attributes", {}).items()))
        key = (str(getattr(script, "filename", script) or ""), attributes)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
