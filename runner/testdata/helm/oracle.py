"""Renders every chart under charts/ with every values file under values/<chart>/ through
Helm's real engine (PyPI helm-python-sdk) and writes the result to OUT/<chart>/<case>/.

Usage: python oracle.py OUT_DIR   (run from anywhere; paths are relative to this file)
Each rendered template is written at its Helm path (e.g. sprig/templates/x.yaml), byte for
byte; the Rust golden test compares our render with these files.
Release: name "rel", namespace "ns", revision 1, install.
"""
import json
import os
import sys

from helm_python import Chart, values_from_yaml

HERE = os.path.dirname(os.path.abspath(__file__))


def render_case(chart_dir, values_file):
    with open(values_file) as f:
        values = values_from_yaml(f.read())
    with Chart.load(chart_dir) as chart:
        return chart.render(values, name="rel", namespace="ns", revision=1, is_install=True)


def main():
    out = sys.argv[1]
    charts = os.path.join(HERE, "charts")
    for name in sorted(os.listdir(charts)):
        vdir = os.path.join(HERE, "values", name)
        for case in sorted(os.listdir(vdir)):
            if not case.endswith(".yaml"):
                continue
            rendered = render_case(os.path.join(charts, name), os.path.join(vdir, case))
            for path, text in rendered.items():
                dest = os.path.join(out, name, case[: -len(".yaml")], path)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest, "w") as f:
                    f.write(text)
    json.dump({"helm-python-sdk": version()}, sys.stdout)


def version():
    from importlib.metadata import version as v

    return v("helm-python-sdk")


if __name__ == "__main__":
    main()
